"""What one update statement costs the store, by the shape of its filter, and
what the untracked-jobs claim query costs as one `$or` against one `$in` per
field: the figures behind README "The fleet: a 1 ms round trip, and many
clusters". Needs a MongoDB-wire server (the stack's SecantusDB, or a real
MongoDB) and pymongo (in the stack's venv):

    eval "$(scripts/stack env)"   # or any MONGODB_URI
    ~/.cache/flink-job-sync/venv/bin/python scripts/bench_statements.py

Works in the database `fjs_statement_bench`, which it drops and refills.
"""
import datetime
import os
import time
from concurrent.futures import ThreadPoolExecutor

import pymongo

RECORDS, CHANGED, BATCH = 10_000, 1_500, 500
db = pymongo.MongoClient(os.environ["MONGODB_URI"])["fjs_statement_bench"]
coll = db.flink_jobs
now = datetime.datetime.now(datetime.timezone.utc)


def jid(i):
    return f"{i + 1:032x}"


def seed():
    coll.drop()
    coll.insert_many([{"job_id": f"j{i}", "status": "RUNNING", "flink_job_id": jid(i),
                       "flink_job_ids": [jid(i)], "flink_state": "RUNNING"} for i in range(RECORDS)])
    for field in ["status", "flink_job_id", "flink_job_ids", "job_id"]:
        coll.create_index(field)
    return [(d["_id"], d["flink_job_id"]) for d in coll.find({}, {"flink_job_id": 1}).limit(CHANGED)]


def change(health):
    u = {"$set": {"status": "FINISHED", "flink_state": "FINISHED", "end_time": now, "duration": 60.0,
                  "last_synced_at": now},
         "$push": {"status_history": {"$each": [{"from": "RUNNING", "to": "FINISHED", "at": now,
                                                  "source": "flink"}], "$slice": -50}}}
    if health:
        u["$set"].update({"last_sync_run": "r1", "health": "HEALTHY", "health_checked_at": now,
                          "restarts": 0, "health_reasons": [], "restart_point": "file:///tmp/chk-3",
                          "checkpoint": {"completed": 3, "failed": 0, "interval_ms": 60000,
                                         "retention": "on_cancellation"}})
        u["$inc"] = {"revision": 1}
    return u


by_id = lambda i, j: {"_id": i}
as_read = lambda i, j: {"_id": i, "status": "RUNNING", "flink_job_id": j, "revision": {"$exists": False}}
VARIANTS = [  # name, filter, health fields, hint, commands at once
    ("{_id}", by_id, False, None, 1),
    ("{_id, status, flink_job_id}", lambda i, j: {"_id": i, "status": "RUNNING", "flink_job_id": j}, False, None, 1),
    ("{_id, status, flink_job_id, revision}", as_read, False, None, 1),
    ("  + hint {_id: 1}", as_read, False, {"_id": 1}, 1),
    ("{_id}, with health fields", by_id, True, None, 1),
    ("as read + hint, with health fields (sync's)", as_read, True, {"_id": 1}, 1),
    ("  the same, 3 commands at once", as_read, True, {"_id": 1}, 3),
    ("{_id}, 3 commands at once", by_id, False, None, 3),
]

print(f"update statements: {CHANGED} in commands of {BATCH}, collection of {RECORDS}")
for name, flt, health, hint, at_once in VARIANTS:
    statements = []
    for i, j in seed():
        s = {"q": flt(i, j), "u": change(health)}
        if hint:
            s["hint"] = hint
        statements.append(s)
    batches = [statements[k:k + BATCH] for k in range(0, len(statements), BATCH)]
    started = time.perf_counter()
    with ThreadPoolExecutor(at_once) as ex:
        matched = sum(ex.map(lambda b: db.command({"update": "flink_jobs", "updates": b, "ordered": False})["n"], batches))
    ms = 1000 * (time.perf_counter() - started) / len(statements)
    print(f"  {name:46s} {ms:5.2f} ms a statement ({matched} matched)")

seed()
ids = [jid(i) for i in range(500)]
print(f"claim query: which of {len(ids)} JobIDs records claim, collection of {RECORDS}")
for name, queries in [
    ("one $or over flink_job_id and flink_job_ids",
     [{"$or": [{"flink_job_id": {"$in": ids}}, {"flink_job_ids": {"$in": ids}}]}]),
    ("one $in per field", [{"flink_job_id": {"$in": ids}}, {"flink_job_ids": {"$in": ids}}]),
]:
    started = time.perf_counter()
    found = sum(len(list(coll.find(q, {"_id": 0, "flink_job_id": 1}))) for q in queries)
    print(f"  {name:46s} {time.perf_counter() - started:6.2f} s ({found} found)")
db.client.drop_database("fjs_statement_bench")
