"""A raw JSON-RPC stdio MCP server (2025-11-25) with tasks, for the task pass-through tests.

Tools: `job` (taskSupport optional) and `needs` (required) create a task (ids "t1", "t2"... in each process, so a
restarted server reuses them), after sending a status notification "STATUS OF <who>'s TASK" (`who` is an
argument; with `hold: N` the answer waits until N such calls arrived, 30 s at most); the task's ttl is the
client's (or `--ttl=N`, any JSON number). `wait` answers once an elicitation was answered (30 s at most); `cancels`
answers how many `tasks/cancel` it received, `held` how many `hold` calls arrived; `poke` asks for the latest task at
once (below) and answers what it was told. `tasks/result` answers a result without `_meta`; with `--ask`, it first
asks for its task and answers what it was told. To ask for a task is to send a log message "LOG OF THE TASK" and an
elicitation "SECRET OF THE TASK", both tagged with the task's related-task metadata, and wait (30 s at most) for the
elicitation's answer.
`--notasks`: no tasks capability (the tools still say taskSupport optional). Other words in argv are ignored (e.g. a
marker to find the process by).
"""

import json
import sys
import threading
from collections.abc import Callable

lock = threading.Lock()
NOW = "2026-01-01T00:00:00Z"
cancels = 0
created = 0
asked: dict[str, tuple[threading.Event, list]] = {}
"""Elicitations sent, by id: set with the answer once it arrives."""
answered = threading.Event()
holding = threading.Condition()
held = 0


def write(message: dict) -> None:
    with lock:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()


def answer(request_id: object, result: dict) -> None:
    write({"jsonrpc": "2.0", "id": request_id, "result": result})


def text(request_id: object, said: str) -> None:
    answer(request_id, {"content": [{"type": "text", "text": said}]})


def task(task_id: str, status: str = "working") -> dict:
    times = {"createdAt": NOW, "lastUpdatedAt": NOW}
    return {"taskId": task_id, "status": status, "ttl": 60000, "pollInterval": 500} | times


def ask(task_id: str) -> str:
    """The answer to an elicitation for `task_id` (JSON), after its log message."""
    related = {"io.modelcontextprotocol/related-task": {"taskId": task_id}}
    log = {"level": "error", "data": "LOG OF THE TASK", "_meta": related}
    write({"jsonrpc": "2.0", "method": "notifications/message", "params": log})
    done, found = threading.Event(), []
    elicitation_id = f"e{len(asked) + 1}"
    asked[elicitation_id] = (done, found)
    schema = {"type": "object", "properties": {"reply": {"type": "string"}}}
    params = {"message": "SECRET OF THE TASK", "requestedSchema": schema, "_meta": related}
    write({"jsonrpc": "2.0", "id": elicitation_id, "method": "elicitation/create", "params": params})
    done.wait(30)
    return json.dumps(found[0] if found else None)


def later(request_id: object, work: Callable[[], object]) -> None:
    threading.Thread(target=lambda: text(request_id, str(work())), daemon=True).start()


def capabilities() -> dict:
    tasks = {"tasks": {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}}
    return {"tools": {}, "logging": {}} | ({} if "--notasks" in sys.argv else tasks)


def tools() -> list:
    plain = [{"name": name, "inputSchema": {"type": "object"}} for name in ("wait", "cancels", "held", "poke")]
    return [
        {"name": "job", "inputSchema": {"type": "object"}, "execution": {"taskSupport": "optional"}},
        {"name": "needs", "inputSchema": {"type": "object"}, "execution": {"taskSupport": "required"}},
        *plain,
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


def create_held(request_id: object, params: dict, hold: int) -> None:
    """`create`, once `hold` such calls arrived (30 s at most)."""
    global held
    with holding:
        held += 1
        holding.notify_all()
        holding.wait_for(lambda: held >= hold, 30)
    create(request_id, params)


def call(request_id: object, params: dict) -> None:
    name, hold = params.get("name"), (params.get("arguments") or {}).get("hold")
    if name in ("job", "needs") and hold:
        threading.Thread(target=create_held, args=(request_id, params, hold), daemon=True).start()
    elif name in ("job", "needs"):
        create(request_id, params)
    elif name == "wait":
        later(request_id, lambda: answered.wait(30) and "waited")
    elif name == "poke":
        later(request_id, lambda: ask(f"t{created}"))
    elif name == "held":
        text(request_id, str(held))
    else:
        text(request_id, str(cancels))


def handle(message: dict) -> None:
    global cancels
    method, request_id, params = message.get("method"), message.get("id"), message.get("params") or {}
    if method is None and request_id in asked:  # an answer to an elicitation
        done, found = asked[request_id]
        found.append(message.get("result") or message.get("error"))
        done.set()
        answered.set()
    if method is None or request_id is None:
        return
    if method == "initialize":
        answer(request_id, {"protocolVersion": "2025-11-25", "serverInfo": {"name": "tasks", "version": "1"},
                            "capabilities": capabilities()})  # fmt: skip
    elif method == "tools/list":
        answer(request_id, {"tools": tools()})
    elif method == "tools/call":
        call(request_id, params)
    elif method == "tasks/get":
        answer(request_id, task(params.get("taskId", "?"), "input_required"))
    elif method == "tasks/cancel":
        cancels += 1
        answer(request_id, task(params.get("taskId", "?"), "cancelled"))
    elif method == "tasks/result" and "--ask" in sys.argv:
        later(request_id, lambda: ask(params.get("taskId", "?")))
    elif method == "tasks/result":
        text(request_id, "done")
    else:
        answer(request_id, {})


for line in sys.stdin:
    handle(json.loads(line))
