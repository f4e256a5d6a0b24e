from cartera_common.migrations import run_env
from segmenter.tables import metadata

run_env(metadata)
