"""Writes fuzz/seeds/: small, real-shaped starting inputs for each target.

Run with a Python that has pymongo's `bson` (the stack's venv has it):
    python fuzz/seeds/make_seeds.py
The files are committed; the stable test suite replays them. The
`flink_json/health_*.json` seeds are copies of real Flink 2.3 answers from
shared/tests/fixtures/flink/health/, not written here.
"""
import datetime
import json
import pathlib

import bson

HERE = pathlib.Path(__file__).parent
A = "ef163bff25523543d6699ac3c0e9b72e"
B = "b73bb3f147dc3bd5b562d668b64b4c58"


def put(target, name, data):
    (HERE / target).mkdir(exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (HERE / target / name).write_bytes(data)


# Pod logs: what `flink run -py` prints, and what goes wrong around it.
put("podlog", "submitted.log", f"Using the result of 'hadoop classpath' to augment the Hadoop classpath\nJob has been submitted with JobID {A}\n")
put("podlog", "crlf_colour.log", f"\x1b[32mINFO\x1b[0m start\r\nJob has been submitted with JobID \x1b[1m{A}\x1b[0m\r\n")
put("podlog", "two_ids.log", f"Job has been submitted with JobID {B}\nretrying\nJob has been submitted with JobID {A}\nJob has been submitted with JobID {B}\n")
put("podlog", "decoys.log", f"Job has been submitted with JobID ../../jobs/x/cancel\nJob has been submitted with JobID {A.upper()}\nJob has been submitted with JobID {A}0\nJob has been submitted with JobID {A[:31]}\n")
put("podlog", "traceback.log", "Traceback (most recent call last):\n  File \"/opt/job.py\", line 3, in <module>\n    raise RuntimeError('no table')\nRuntimeError: no table\norg.apache.flink.client.program.ProgramAbortException: java.lang.RuntimeException: Python process exits with code: 1\n\tat org.apache.flink.client.python.PythonDriver.main(PythonDriver.java:134)\n")
put("podlog", "invalid_utf8.log", b"\xff\xfe\xc3\x28 Job has been submitted with JobID " + A.encode() + b"\x1b]0;title\x07\n")
put("podlog", "cut_at_limit.log", "x" * 100 + "\nJob has been submitted with JobID " + A[:20])
# A long log (the fuzzer grows inputs slowly from small ones): Flink's INFO
# chatter, the JobID near the end, and a second one cut by the byte limit.
chatter = "".join(f"2026-11-23 10:00:{i % 60:02d},123 INFO  org.apache.flink.client.cli.CliFrontend [] - line {i}\n" for i in range(700))
put("podlog", "long.log", chatter + f"Job has been submitted with JobID {B}\r\n" + chatter[:2000] + "Job has been submitted with JobID " + A[:7])

# Flink REST bodies: /jobs/overview and /jobs/{id}/exceptions, 2.x shapes.
overview = {"jobs": [
    {"jid": A, "name": "bounded", "start-time": 1763900000000, "end-time": 1763900012000, "duration": 12000, "state": "FINISHED", "last-modification": 1763900012000, "tasks": {"total": 2, "created": 0, "scheduled": 0, "deploying": 0, "running": 0, "finished": 2, "canceling": 0, "canceled": 0, "failed": 0, "reconciling": 0, "initializing": 0, "pending": 0}},
    {"jid": B, "name": "streaming", "start-time": 1763900000000, "end-time": -1, "duration": 5000, "state": "RUNNING"},
    {"jid": "../../jobs/x", "name": "decoy", "state": "RUNNING"},
    {"jid": A.upper(), "state": "SOMETHING_NEW", "extra": {"nested": [1, 2, 3]}},
]}
put("flink_json", "overview.json", json.dumps(overview))
put("flink_json", "overview_empty.json", '{"jobs":[]}')
put("flink_json", "exceptions_2x.json", json.dumps({"exceptionHistory": {"entries": [{"exceptionName": "org.apache.flink.runtime.JobException", "stacktrace": "org.apache.flink.runtime.JobException: Recovery is suppressed by NoRestartBackoffTimeStrategy\n\tat x.y(Z.java:1)\nCaused by: java.lang.NumberFormatException: For input string: \"abc\"\n\tat q.r(S.java:2)\n", "timestamp": 1763900012000, "taskName": "Map", "failureLabels": {}}], "truncated": False}}))
put("flink_json", "exceptions_1x.json", json.dumps({"root-exception": "java.lang.IllegalStateException: boom\n\tat a.b(C.java:1)", "timestamp": 1763900012000, "all-exceptions": [], "truncated": False}))
put("flink_json", "truncated.json", json.dumps(overview)[:150])

# Kubernetes: [job, [pods]] as the API returns them.
job = {
    "apiVersion": "batch/v1", "kind": "Job",
    "metadata": {"name": "pyjob-1", "namespace": "lemo-dev", "uid": "6f1c2b9e-0000-4000-8000-000000000001", "creationTimestamp": "2026-11-23T10:00:00Z", "labels": {"app": "flink-submit"}},
    "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "submit", "image": "flink:2.3.0"}]}}},
    "status": {"failed": 1, "startTime": "2026-11-23T10:00:00Z", "conditions": [
        {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"},
        {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit", "lastTransitionTime": "2026-11-23T10:00:30Z"}]},
}
pod = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "pyjob-1-x7k2p", "namespace": "lemo-dev", "creationTimestamp": "2026-11-23T10:00:01Z",
                 "labels": {"batch.kubernetes.io/job-name": "pyjob-1", "job-name": "pyjob-1"},
                 "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "pyjob-1", "uid": "6f1c2b9e-0000-4000-8000-000000000001", "controller": True, "blockOwnerDeletion": True}]},
    "spec": {"restartPolicy": "Never", "containers": [{"name": "submit", "image": "flink:2.3.0"}]},
    "status": {"phase": "Failed", "containerStatuses": [{"name": "submit", "image": "flink:2.3.0", "imageID": "", "ready": False, "restartCount": 0,
               "state": {"terminated": {"exitCode": 31, "reason": "Error", "startedAt": "2026-11-23T10:00:02Z", "finishedAt": "2026-11-23T10:00:20Z"}}}]},
}
waiting = json.loads(json.dumps(pod))
waiting["metadata"]["name"] = "pyjob-1-abcde"
waiting["status"] = {"phase": "Pending", "containerStatuses": [{"name": "submit", "image": "flink:2.3.0", "imageID": "", "ready": False, "restartCount": 0,
                     "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}}]}
hostile = json.loads(json.dumps(pod))
hostile["metadata"]["name"] = "../../namespaces/kube-system/pods/x"
hostile["spec"]["containers"][0]["name"] = "a/b?c=d"
hostile["status"]["phase"] = "Running"
odd_container = json.loads(json.dumps(pod))
odd_container["metadata"]["name"] = "pyjob-1-zzzzz"
odd_container["spec"]["containers"][0]["name"] = "../x?follow=true"
put("k8s_objects", "failed_job_with_pods.json", json.dumps([job, [pod, waiting, hostile, odd_container]]))
complete = json.loads(json.dumps(job))
complete["status"] = {"succeeded": 1, "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]}
put("k8s_objects", "complete_job_no_pods.json", json.dumps([complete, []]))
put("k8s_objects", "pod_alone.json", json.dumps(pod))

# Records as stored, good and bad.
now = datetime.datetime(2026, 11, 23, 10, 0, tzinfo=datetime.timezone.utc)
records = {
    "created.bson": {"_id": bson.ObjectId("6741a0000000000000000001"), "job_id": "pyjob-1", "status": "CREATED", "flink_job_id": None, "submitted_at": now, "k8s_namespace": "lemo-dev", "script": "job.py"},
    "running.bson": {"_id": bson.ObjectId("6741a0000000000000000002"), "job_id": "pyjob-2", "status": "RUNNING", "flink_job_id": A, "submitted_at": "2026-11-23T10:00:00", "flink_state": "RUNNING", "start_time": now, "revision": bson.Int64(3), "flink_missing_count": 1},
    "empty_flink_id.bson": {"_id": "string-id", "job_id": "pyjob-3", "status": "SUBMITTED", "flink_job_id": "", "duration": 12},
    "bad_type.bson": {"_id": 7, "job_id": 42, "status": "CREATED"},
    "bad_status.bson": {"_id": bson.ObjectId("6741a0000000000000000004"), "job_id": "pyjob-4", "status": "SOMETHING", "flink_job_id": "../../jobs"},
    "huge_job_id.bson": {"_id": bson.ObjectId("6741a0000000000000000005"), "job_id": "j" * 5000, "status": "NOPE" * 500},
    "bad_names.bson": {"_id": bson.ObjectId("6741a0000000000000000006"), "job_id": "pyjob-6", "status": "CREATED", "k8s_job_name": "../x", "k8s_namespace": "Kube System"},
}
for name, d in records.items():
    put("record", name, bson.encode(d))
