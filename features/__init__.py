"""Layer 1: department tables -> validated, linked tables -> monthly enterprise profiles."""

import warnings

# pandera (ingest's validation) imports pyspark.pandas when pyspark, our Spark engine, is installed, and that warns
# that it does not support pandas 3; nothing here uses pyspark.pandas. Set before any module of the layer loads.
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
