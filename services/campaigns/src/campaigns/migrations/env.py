from campaigns.tables import metadata
from cartera_common.migrations import run_env

run_env(metadata)
