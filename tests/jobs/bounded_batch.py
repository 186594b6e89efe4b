"""bounded.py in batch mode: 1000 generated rows into a blackhole, then FINISHED.
A batch job has no checkpointing at all: once it has ended, Flink 2.3 answers
GET /jobs/{id}/checkpoints and /checkpoints/config with 404 (a streaming job
without checkpointing answers 200 with empty counts and interval Long.MAX)."""
from pyflink.table import EnvironmentSettings, TableEnvironment

t_env = TableEnvironment.create(EnvironmentSettings.in_batch_mode())
t_env.get_config().set("pipeline.name", "fjs-bounded-batch")
t_env.execute_sql(
    "CREATE TABLE src (id BIGINT) WITH ("
    "'connector' = 'datagen', 'number-of-rows' = '1000', 'rows-per-second' = '1000')"
)
t_env.execute_sql("CREATE TABLE sink (id BIGINT) WITH ('connector' = 'blackhole')")
t_env.execute_sql("INSERT INTO sink SELECT id FROM src")
