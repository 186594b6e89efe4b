"""An unbounded streaming Flink SQL job (datagen -> blackhole) that runs until
cancelled or stopped, and checkpoints when checkpointing is switched on from
the command line, as the product's pods do, e.g.:

    flink run -d -Dexecution.checkpointing.interval=1s \
        -Dstate.checkpoints.dir=file:///DIR -py checkpointed_stream.py

(add -Dexecution.checkpointing.externalized-checkpoint-retention=RETAIN_ON_CANCELLATION
to keep the last checkpoint after a cancel). The script sets nothing about
checkpointing itself: without those options the job runs without checkpoints.
It does not wait on the job: with -d the client ends once the job is submitted."""
from pyflink.table import EnvironmentSettings, TableEnvironment

t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
t_env.get_config().set("pipeline.name", "fjs-checkpointed-stream")
t_env.execute_sql(
    "CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '10')"
)
t_env.execute_sql("CREATE TABLE sink (id BIGINT) WITH ('connector' = 'blackhole')")
t_env.execute_sql("INSERT INTO sink SELECT id FROM src")
