"""A raw JSON-RPC stdio MCP server (2025-11-25) with tasks, for the task pass-through tests.

Tools: `job` (taskSupport optional) and `needs` (required) create a task (ids "t1", "t2"... in each process, so a
restarted server reuses them), after sending a status notification "STATUS OF <who>'s TASK" (`who` is an
argument); the task's ttl is the client's (or `--ttl=N`, any JSON number). `wait` answers after 3 s; `cancels`
answers how many `tasks/cancel` it received. `tasks/result` answers a result without `_meta`. Flags (any order,
other words are ignored, e.g. a marker to find the process by):
- `--ask`: 1 s after creating a task, a log message and an elicitation tagged with its related-task metadata.
- `--notasks`: no tasks capability (the tools still say taskSupport optional).
"""

import json
import sys
import threading
import time

lock = threading.Lock()
NOW = "2026-01-01T00:00:00Z"
cancels = 0
created = 0


def write(message: dict) -> None:
    with lock:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()


def answer(request_id: object, result: dict) -> None:
    write({"jsonrpc": "2.0", "id": request_id, "result": result})


def task(task_id: str, status: str = "working") -> dict:
    return {
        "taskId": task_id,
        "status": status,
        "createdAt": NOW,
        "lastUpdatedAt": NOW,
        "ttl": 60000,
        "pollInterval": 500,
    }


def ask_later(task_id: str) -> None:
    time.sleep(1.0)
    related = {"io.modelcontextprotocol/related-task": {"taskId": task_id}}
    log = {"level": "error", "data": "LOG OF THE TASK", "_meta": related}
    write({"jsonrpc": "2.0", "method": "notifications/message", "params": log})
    schema = {"type": "object", "properties": {"reply": {"type": "string"}}}
    params = {"message": "SECRET OF THE TASK", "requestedSchema": schema, "_meta": related}
    write({"jsonrpc": "2.0", "id": "e1", "method": "elicitation/create", "params": params})


def later(request_id: object) -> None:
    time.sleep(3)
    answer(request_id, {"content": [{"type": "text", "text": "waited"}]})


def capabilities() -> dict:
    tasks = {"tasks": {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}}
    return {"tools": {}, "logging": {}} | ({} if "--notasks" in sys.argv else tasks)


def tools() -> list:
    execution = {"execution": {"taskSupport": "optional"}}
    return [
        {"name": "job", "inputSchema": {"type": "object"}} | execution,
        {"name": "needs", "inputSchema": {"type": "object"}, "execution": {"taskSupport": "required"}},
        {"name": "wait", "inputSchema": {"type": "object"}},
        {"name": "cancels", "inputSchema": {"type": "object"}},
    ]


def create(request_id: object, params: dict) -> None:
    global created
    created += 1
    task_id = f"t{created}"
    who = (params.get("arguments") or {}).get("who", "?")
    write({"jsonrpc": "2.0", "method": "notifications/tasks/status",
           "params": task(task_id) | {"statusMessage": f"STATUS OF {who}'s TASK"}})  # fmt: skip
    ttl = next((json.loads(a[6:]) for a in sys.argv if a.startswith("--ttl=")), (params.get("task") or {}).get("ttl"))
    answer(request_id, {"task": task(task_id) | {"ttl": ttl}})
    if "--ask" in sys.argv:
        threading.Thread(target=ask_later, args=(task_id,), daemon=True).start()


def handle(message: dict) -> None:
    global cancels
    method, request_id, params = message.get("method"), message.get("id"), message.get("params") or {}
    if method is None or request_id is None:
        return
    if method == "initialize":
        answer(request_id, {"protocolVersion": "2025-11-25", "serverInfo": {"name": "tasks", "version": "1"},
                            "capabilities": capabilities()})  # fmt: skip
    elif method == "tools/list":
        answer(request_id, {"tools": tools()})
    elif method == "tools/call" and params.get("name") in ("job", "needs"):
        create(request_id, params)
    elif method == "tools/call" and params.get("name") == "wait":
        threading.Thread(target=later, args=(request_id,), daemon=True).start()
    elif method == "tools/call":
        answer(request_id, {"content": [{"type": "text", "text": str(cancels)}]})
    elif method == "tasks/get":
        answer(request_id, task(params.get("taskId", "?"), "input_required"))
    elif method == "tasks/cancel":
        cancels += 1
        answer(request_id, task(params.get("taskId", "?"), "cancelled"))
    elif method == "tasks/result":
        answer(request_id, {"content": [{"type": "text", "text": "done"}]})
    else:
        answer(request_id, {})


for line in sys.stdin:
    handle(json.loads(line))
