"""The console's pages, one router per page; adding a page is adding a module here and its template."""
