"""Who may do what, by role; the API and the console both check these tuples and no others.

Officers act only within their own district (of their city, in a store a province's cities share: see
``serving.services.scope``, which also keeps any user bound to a city to that city); supervisors assign,
correct verdicts and watch the city;
analysts read and never write; admins also run the service (reload the model). Other systems call with an API key bound to
a user, and so to one of these roles.
"""

from __future__ import annotations

ROLES = ("officer", "supervisor", "analyst", "admin")

READ = ROLES  # live run's model info, alerts, the queue
SCORES = ("supervisor", "analyst", "admin")  # scores, predictions, water rights
LEAD_WORK = ("officer", "supervisor", "admin")  # assign, start, record a verdict
OUTBOX_READ = ("supervisor", "analyst", "admin")  # read the SMS outbox
OUTBOX_WRITE = ("supervisor", "admin")  # mark delivery (the SMS gateway's account has one of these roles)
CASE_WORK = ("officer", "supervisor", "admin")  # move a case along its track (officers: their district's)
SUPERVISE = ("supervisor", "admin")  # amend a verdict, reopen a lead, reassign
DASHBOARD = ("supervisor", "analyst", "admin")  # the city dashboard
ADMIN = ("admin",)  # run the service
