# ruff: noqa: E501  (a data table: one tool per line reads better than wrapped)
"""A synthetic tool catalog the size of a real hub's: 50 servers of 10 tools (500), named and described the way
MCP servers describe theirs, with argument schemas; `catalog(copies)` repeats it under new server names for the
5,000-tool benchmark. Also the 30 search queries with their known answers (written before the ranking was tuned)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Arg = tuple[str, str, bool]
"""(name, description, required)"""


@dataclass(frozen=True, slots=True)
class FakeTool:
    name: str
    server: str
    original_name: str
    description: str | None
    input_schema: Mapping[str, Any] = field(default_factory=dict[str, Any])


def _schema(args: list[Arg]) -> dict[str, Any]:
    properties = {name: {"type": "string", "description": text} for name, text, _ in args}
    return {"type": "object", "properties": properties, "required": [n for n, _, req in args if req]}


# server -> (product, [(entity, plural, [fields])], [(tool, description, [args])])
Spec = tuple[str, list[tuple[str, str, list[str]]], list[tuple[str, str, list[Arg]]]]
SERVERS: dict[str, Spec] = {
    "github": ("GitHub", [("issue", "issues", ["repo", "title", "body"]), ("repository", "repositories", ["owner"]),
                          ("release", "releases", ["repo", "tag"])],
               [("merge_pull_request", "Merge an open pull request into its base branch.",
                 [("repo", "owner/name", True), ("pull_number", "PR number", True), ("merge_method", "merge, squash or rebase", False)]),
                ("create_pull_request", "Open a new pull request from a head branch into a base branch.",
                 [("repo", "owner/name", True), ("head", "branch with the changes", True), ("base", "target branch", True)]),
                ("list_workflow_runs", "List GitHub Actions workflow runs of a repository with their status.",
                 [("repo", "owner/name", True), ("status", "queued, in_progress, completed", False)]),
                ("get_file_contents", "Get the contents of a file or directory from a GitHub repository.",
                 [("repo", "owner/name", True), ("path", "path in the repository", True), ("ref", "branch or commit", False)])]),
    "gitlab": ("GitLab", [("merge_request", "merge_requests", ["project", "title"]), ("pipeline", "pipelines", ["project"]),
                          ("project", "projects", ["namespace"])], []),
    "jira": ("Jira", [("issue", "issues", ["project_key", "summary", "issue_type"]), ("sprint", "sprints", ["board_id"]),
                      ("project", "projects", ["key"])],
             [("transition_issue", "Move a Jira issue to another status in its workflow (e.g. In Progress, Done).",
               [("issue_key", "e.g. PROJ-123", True), ("transition", "target status", True)]),
              ("add_comment", "Add a comment to a Jira issue.", [("issue_key", "e.g. PROJ-123", True), ("body", "comment text", True)]),
              ("assign_issue", "Assign a Jira issue to a user.", [("issue_key", "e.g. PROJ-123", True), ("assignee", "account id", True)])]),
    "linear": ("Linear", [("issue", "issues", ["team_id", "title"]), ("cycle", "cycles", ["team_id"]),
                          ("team", "teams", [])], []),
    "confluence": ("Confluence", [("page", "pages", ["space_key", "title", "body"]), ("space", "spaces", [])],
                   [("search_content", "Search Confluence pages and blog posts with CQL.", [("cql", "Confluence Query Language", True)])]),
    "notion": ("Notion", [("page", "pages", ["parent_id", "title"]), ("database", "databases", ["parent_id"]),
                          ("block", "blocks", ["page_id"])],
               [("query_database", "Query a Notion database with filters and sorts.", [("database_id", "database", True), ("filter", "filter object", False)])]),
    "slack": ("Slack", [("channel", "channels", ["name"]), ("user", "users", [])],
              [("post_message", "Send a message to a Slack channel or thread.",
                [("channel", "channel id or name", True), ("text", "message text", True), ("thread_ts", "reply in thread", False)]),
               ("add_reaction", "Add an emoji reaction to a Slack message.", [("channel", "channel", True), ("timestamp", "message ts", True), ("name", "emoji name", True)]),
               ("get_channel_history", "Read recent messages of a Slack channel.", [("channel", "channel", True), ("limit", "how many", False)]),
               ("search_messages", "Search Slack messages across channels.", [("query", "search text", True)])]),
    "discord": ("Discord", [("channel", "channels", ["guild_id", "name"]), ("role", "roles", ["guild_id"])],
                [("send_message", "Send a message to a Discord channel.", [("channel_id", "channel", True), ("content", "message", True)])]),
    "teams": ("Microsoft Teams", [("team", "teams", []), ("channel", "channels", ["team_id"])],
              [("send_channel_message", "Post a message in a Microsoft Teams channel.", [("team_id", "team", True), ("channel_id", "channel", True), ("content", "message", True)])]),
    "gmail": ("Gmail", [("label", "labels", ["name"]), ("draft", "drafts", ["to", "subject", "body"])],
              [("send_email", "Send an email from the user's Gmail account.", [("to", "recipients", True), ("subject", "subject", True), ("body", "body", True)]),
               ("search_emails", "Search emails in Gmail with Gmail search syntax.", [("query", "e.g. from:alice is:unread", True)]),
               ("read_email", "Read one email with its headers, body and attachments list.", [("message_id", "message", True)])]),
    "calendar": ("Google Calendar", [("event", "events", ["calendar_id", "summary", "start", "end", "attendees"]),
                                     ("calendar", "calendars", [])],
                 [("find_free_time", "Find free time slots shared by several people's calendars.",
                   [("attendees", "emails", True), ("duration_minutes", "length", True), ("time_min", "from", False)])]),
    "postgres": ("PostgreSQL", [("table", "tables", ["schema"])],
                 [("query", "Run a read-only SQL query against the PostgreSQL database and return the rows.", [("sql", "SELECT statement", True)]),
                  ("execute", "Execute a SQL statement that changes data (INSERT, UPDATE, DELETE, DDL).", [("sql", "statement", True)]),
                  ("describe_table", "Describe a table's columns, types, indexes and constraints.", [("table", "table name", True)]),
                  ("explain_query", "Show the query plan of a SQL query (EXPLAIN ANALYZE).", [("sql", "query", True)])]),
    "mysql": ("MySQL", [("table", "tables", ["database"])],
              [("run_query", "Run a SQL query on MySQL.", [("sql", "query", True)]),
               ("show_databases", "List the databases on the MySQL server.", [])]),
    "sqlite": ("SQLite", [("table", "tables", [])],
               [("read_query", "Execute a SELECT query on the SQLite database.", [("query", "SELECT", True)]),
                ("write_query", "Execute an INSERT, UPDATE or DELETE query on the SQLite database.", [("query", "statement", True)])]),
    "mongodb": ("MongoDB", [("collection", "collections", ["database"]), ("document", "documents", ["collection"])],
                [("aggregate", "Run an aggregation pipeline on a MongoDB collection.", [("collection", "collection", True), ("pipeline", "stages", True)])]),
    "redis": ("Redis", [("key", "keys", ["pattern"])],
              [("set_value", "Set a string value at a Redis key, with an optional expiry.", [("key", "key", True), ("value", "value", True), ("ttl", "seconds", False)]),
               ("get_value", "Get the value stored at a Redis key.", [("key", "key", True)]),
               ("publish", "Publish a message on a Redis pub/sub channel.", [("channel", "channel", True), ("message", "message", True)])]),
    "files": ("the local filesystem", [("directory", "directories", ["path"])],
              [("read_file", "Read the complete contents of a text file from the filesystem.", [("path", "file path", True)]),
               ("write_file", "Create a new file or overwrite an existing file with new content.", [("path", "file path", True), ("content", "text", True)]),
               ("list_directory", "List the files and subdirectories in a directory.", [("path", "directory", True)]),
               ("move_file", "Move or rename a file or directory.", [("source", "from", True), ("destination", "to", True)]),
               ("search_files", "Recursively search for files whose names match a pattern.", [("path", "start directory", True), ("pattern", "glob", True)]),
               ("get_file_info", "Get a file's size, creation and modification times and permissions.", [("path", "file path", True)])]),
    "s3": ("Amazon S3", [("bucket", "buckets", ["region"]), ("object", "objects", ["bucket", "key"])],
          [("generate_presigned_url", "Create a presigned URL to download an S3 object without credentials.", [("bucket", "bucket", True), ("key", "key", True)])]),
    "gdrive": ("Google Drive", [("file", "files", ["folder_id", "name"]), ("folder", "folders", ["parent_id"])],
              [("share_file", "Share a Google Drive file with people by email.", [("file_id", "file", True), ("email", "who", True), ("role", "reader, writer", False)])]),
    "kubernetes": ("Kubernetes", [("pod", "pods", ["namespace"]), ("deployment", "deployments", ["namespace", "image"]),
                                  ("service", "services", ["namespace"])],
                   [("get_pod_logs", "Fetch the logs of a pod's container.", [("pod", "pod", True), ("namespace", "namespace", False), ("container", "container", False)]),
                    ("scale_deployment", "Scale a deployment to a number of replicas.", [("deployment", "name", True), ("replicas", "count", True)])]),
    "docker": ("Docker", [("container", "containers", ["image"]), ("image", "images", ["tag"]), ("volume", "volumes", [])],
               [("run_container", "Start a new container from an image.", [("image", "image", True), ("ports", "port mappings", False)])]),
    "aws": ("AWS", [("ec2_instance", "ec2_instances", ["region", "instance_type"]), ("lambda_function", "lambda_functions", ["runtime"])],
            [("invoke_lambda", "Invoke an AWS Lambda function with a JSON payload.", [("function_name", "function", True), ("payload", "JSON", False)]),
             ("get_cost_and_usage", "Get AWS cost and usage for a time period, grouped by service.", [("start", "date", True), ("end", "date", True)])]),
    "terraform": ("Terraform Cloud", [("workspace", "workspaces", ["organization"]), ("run", "runs", ["workspace_id"])],
                  [("plan", "Create a Terraform plan for a workspace and show the changes.", [("workspace_id", "workspace", True)]),
                   ("apply_run", "Apply a planned Terraform run.", [("run_id", "run", True)])]),
    "sentry": ("Sentry", [("issue", "issues", ["project"]), ("project", "projects", ["organization"])],
               [("get_issue_events", "List the error events (stack traces) of a Sentry issue.", [("issue_id", "issue", True)]),
                ("resolve_issue", "Mark a Sentry issue as resolved.", [("issue_id", "issue", True)])]),
    "datadog": ("Datadog", [("monitor", "monitors", ["query"]), ("dashboard", "dashboards", ["title"])],
                [("query_metrics", "Query Datadog timeseries metrics over a time range.", [("query", "metric query", True), ("from", "start", True), ("to", "end", True)]),
                 ("search_logs", "Search Datadog logs with a query.", [("query", "log query", True)])]),
    "pagerduty": ("PagerDuty", [("incident", "incidents", ["service_id", "title"]), ("schedule", "schedules", [])],
                  [("acknowledge_incident", "Acknowledge a triggered PagerDuty incident.", [("incident_id", "incident", True)]),
                   ("get_oncall", "Who is on call now for a PagerDuty schedule or escalation policy.", [("schedule_id", "schedule", False)])]),
    "grafana": ("Grafana", [("dashboard", "dashboards", ["folder"]), ("alert_rule", "alert_rules", ["folder"])],
                [("query_prometheus", "Run a PromQL query through a Grafana Prometheus datasource.", [("expr", "PromQL", True)])]),
    "stripe": ("Stripe", [("customer", "customers", ["email"]), ("invoice", "invoices", ["customer"]),
                          ("subscription", "subscriptions", ["customer", "price"])],
               [("create_refund", "Refund a Stripe charge or payment intent, fully or partly.", [("payment_intent", "payment", True), ("amount", "cents", False)]),
                ("get_balance", "Get the Stripe account's available and pending balance.", [])]),
    "shopify": ("Shopify", [("product", "products", ["title", "price"]), ("order", "orders", ["customer_id"]),
                            ("customer", "customers", ["email"])],
                [("adjust_inventory", "Adjust the inventory level of a product variant at a location.", [("variant_id", "variant", True), ("delta", "change", True)])]),
    "salesforce": ("Salesforce", [("lead", "leads", ["company", "email"]), ("opportunity", "opportunities", ["account_id", "amount"]),
                                  ("account", "accounts", ["name"])],
                   [("run_soql", "Run a SOQL query against Salesforce.", [("soql", "query", True)])]),
    "hubspot": ("HubSpot", [("contact", "contacts", ["email"]), ("deal", "deals", ["pipeline"]), ("company", "companies", ["domain"])], []),
    "zendesk": ("Zendesk", [("ticket", "tickets", ["subject", "requester"]), ("user", "users", ["email"])],
                [("add_ticket_comment", "Reply to a Zendesk support ticket (public reply or internal note).", [("ticket_id", "ticket", True), ("body", "text", True), ("public", "visible to requester", False)])]),
    "intercom": ("Intercom", [("conversation", "conversations", ["contact_id"]), ("contact", "contacts", ["email"])],
                 [("reply_conversation", "Reply to an Intercom conversation as an admin.", [("conversation_id", "conversation", True), ("body", "text", True)])]),
    "twilio": ("Twilio", [("phone_number", "phone_numbers", ["area_code"])],
               [("send_sms", "Send an SMS text message to a phone number.", [("to", "phone number", True), ("body", "text", True)]),
                ("make_call", "Place an outbound phone call that plays a message.", [("to", "phone number", True), ("twiml", "what to say", True)])]),
    "sendgrid": ("SendGrid", [("template", "templates", ["name"]), ("contact_list", "contact_lists", ["name"])],
                 [("send_mail", "Send a transactional email through SendGrid.", [("to", "recipient", True), ("template_id", "template", False)])]),
    "weather": ("the weather service", [],
                [("get_current_weather", "Current weather conditions (temperature, wind, humidity) for a city or coordinates.", [("location", "city or lat,lon", True)]),
                 ("get_forecast", "Weather forecast for the next days for a location.", [("location", "city", True), ("days", "1-14", False)]),
                 ("get_alerts", "Active severe weather alerts for a US state.", [("state", "two-letter code", True)])]),
    "time": ("the clock", [],
             [("get_current_time", "Get the current time in a timezone.", [("timezone", "IANA name", True)]),
              ("convert_time", "Convert a time from one timezone to another.", [("time", "HH:MM", True), ("source_timezone", "from", True), ("target_timezone", "to", True)])]),
    "maps": ("Google Maps", [("place", "places", ["query"])],
             [("geocode", "Convert an address into latitude and longitude coordinates.", [("address", "address", True)]),
              ("directions", "Driving, walking or transit directions between two places, with duration.", [("origin", "from", True), ("destination", "to", True), ("mode", "driving, walking, transit", False)]),
              ("distance_matrix", "Travel distances and times between many origins and destinations.", [("origins", "places", True), ("destinations", "places", True)])]),
    "websearch": ("the web", [],
                  [("web_search", "Search the web and return result titles, URLs and snippets.", [("query", "search terms", True), ("count", "results", False)]),
                   ("news_search", "Search recent news articles.", [("query", "search terms", True)]),
                   ("image_search", "Search the web for images.", [("query", "search terms", True)])]),
    "browser": ("a headless browser", [],
                [("navigate", "Open a URL in the browser page.", [("url", "address", True)]),
                 ("screenshot", "Take a screenshot of the current page or an element.", [("selector", "CSS selector", False)]),
                 ("click", "Click an element on the page.", [("selector", "CSS selector", True)]),
                 ("fill", "Type text into an input field.", [("selector", "CSS selector", True), ("value", "text", True)]),
                 ("evaluate", "Run JavaScript in the page and return the result.", [("script", "JavaScript", True)])]),
    "fetch": ("the web", [],
              [("fetch_url", "Fetch a URL and return its content as markdown.", [("url", "address", True), ("max_length", "characters", False)])]),
    "git": ("a local git repository", [("branch", "branches", ["repo_path"])],
            [("git_status", "Show the working tree status of a local git repository.", [("repo_path", "path", True)]),
             ("git_diff", "Show unstaged changes in the working tree.", [("repo_path", "path", True)]),
             ("git_commit", "Record staged changes with a commit message.", [("repo_path", "path", True), ("message", "commit message", True)]),
             ("git_log", "Show the commit history of a repository.", [("repo_path", "path", True), ("max_count", "commits", False)]),
             ("git_checkout", "Switch to another branch.", [("repo_path", "path", True), ("branch", "branch", True)])]),
    "npm": ("the npm registry", [],
            [("package_info", "Get an npm package's latest version, description and dependencies.", [("name", "package", True)]),
             ("search_packages", "Search the npm registry for JavaScript packages.", [("query", "keywords", True)])]),
    "translate": ("the translation service", [],
                  [("translate_text", "Translate text into another language.", [("text", "text", True), ("target_language", "e.g. fr", True)]),
                   ("detect_language", "Detect the language of a text.", [("text", "text", True)])]),
    "memory": ("the knowledge graph memory", [("entity", "entities", ["name", "entity_type"]), ("relation", "relations", ["from", "to"])],
               [("add_observations", "Add observations (facts) to existing entities in the memory graph.", [("entity", "name", True), ("observations", "facts", True)]),
                ("read_graph", "Read the whole knowledge graph.", [])]),
    "youtube": ("YouTube", [("playlist", "playlists", ["title"])],
                [("get_transcript", "Get the transcript (captions) of a YouTube video.", [("video_id", "video", True), ("language", "code", False)]),
                 ("search_videos", "Search YouTube videos.", [("query", "terms", True)])]),
    "spotify": ("Spotify", [("playlist", "playlists", ["name"])],
                [("play", "Start or resume playback of a track, album or playlist.", [("uri", "spotify uri", False)]),
                 ("pause", "Pause playback.", []),
                 ("search_tracks", "Search Spotify for songs.", [("query", "terms", True)])]),
    "todoist": ("Todoist", [("task", "tasks", ["content", "due_string", "priority"]), ("project", "projects", ["name"])],
                [("complete_task", "Mark a Todoist task as done.", [("task_id", "task", True)])]),
    "trello": ("Trello", [("card", "cards", ["list_id", "name"]), ("board", "boards", ["name"]), ("list", "lists", ["board_id"])],
               [("move_card", "Move a Trello card to another list.", [("card_id", "card", True), ("list_id", "target list", True)])]),
    "figma": ("Figma", [("comment", "comments", ["file_key", "message"])],
              [("get_file", "Get a Figma file's document tree (frames, components, styles).", [("file_key", "file", True)]),
               ("export_images", "Export Figma nodes as PNG or SVG images.", [("file_key", "file", True), ("ids", "node ids", True), ("format", "png, svg", False)])]),
}  # fmt: skip

_VERBS = (
    ("list", "List {plural} in {product}, newest first; filter by {fields} and page through results."),
    ("create", "Create a new {entity} in {product}."),
    ("get", "Get one {entity} from {product} by its ID, with all its details."),
    ("update", "Update the fields of an existing {entity} in {product}."),
    ("search", "Search {plural} in {product} by keywords."),
    ("delete", "Delete a {entity} from {product}. This cannot be undone."),
)
TOOLS_PER_SERVER = 10


def _generated(product: str, entity: str, plural: str, fields: list[str]) -> list[tuple[str, str, list[Arg]]]:
    words = entity.replace("_", " ")
    many = plural.replace("_", " ")
    tools: list[tuple[str, str, list[Arg]]] = []
    for verb, template in _VERBS:
        text = template.format(plural=many, entity=words, product=product, fields=", ".join(fields) or "name")
        if verb == "list":
            args = [(f, f"only {many} with this {f}", False) for f in fields] + [("cursor", "next page", False)]
        elif verb == "create":
            args = [(f, f"the {words}'s {f}", True) for f in fields] or [("name", "name", True)]
        elif verb == "search":
            args = [("query", "keywords", True)]
        else:
            args = [(f"{entity}_id", f"ID of the {words}", True)]
            if verb == "update":
                args += [(f, f"new {f}", False) for f in fields]
        name = f"{verb}_{plural}" if verb in ("list", "search") else f"{verb}_{entity}"
        tools.append((name, text, args))
    return tools


def _server_tools(server: str, spec: Spec) -> list[tuple[str, str, list[Arg]]]:
    product, entities, specials = spec
    tools = list(specials)
    generated = [_generated(product, *entity) for entity in entities]
    for round_ in range(len(_VERBS)):  # each entity's list, then get, then create... until the server has 10 tools
        for tools_of_entity in generated:
            if len(tools) < TOOLS_PER_SERVER and tools_of_entity[round_][0] not in {t[0] for t in tools}:
                tools.append(tools_of_entity[round_])
    extra = [("health_check", f"Check that {product} is reachable and the credentials work.", []),
             ("get_usage", f"Get API usage and rate-limit status for {product}.", []),
             ("list_capabilities", f"List what this {product} integration can do.", []),
             ("get_config", f"Show the {product} connection settings (without secrets).", []),
             ("get_version", f"Get the version of the {product} API in use.", []),
             ("list_recent_activity", f"List recent activity in {product} (who did what, when).", []),
             ("get_account", f"Get the {product} account this integration is signed in as.", []),
             ("list_webhooks", f"List the webhooks registered with {product}.", []),
             ("get_quota", f"Get remaining quota of {product}.", [])]  # fmt: skip
    for item in extra:  # servers with few entities get small admin tools, as real servers have
        if len(tools) < TOOLS_PER_SERVER:
            tools.append(item)
    return tools[:TOOLS_PER_SERVER]


def catalog(copies: int = 1, separator: str = "__") -> list[FakeTool]:
    """`copies` x 500 tools; copy k > 0 names its servers `<server>_<k>` (a hub with many similar servers)."""
    found: list[FakeTool] = []
    for copy in range(copies):
        for server, spec in SERVERS.items():
            name = server if copy == 0 else f"{server}_{copy}"
            for tool, description, args in _server_tools(server, spec):
                found.append(FakeTool(f"{name}{separator}{tool}", name, tool, description, _schema(args)))
    return sorted(found, key=lambda t: t.name)


QUERIES: tuple[tuple[str, str], ...] = (
    ("open a new bug in jira", "jira__create_issue"),
    ("send a message to a slack channel", "slack__post_message"),
    ("run a SQL query against postgres", "postgres__query"),
    ("list files in a directory", "files__list_directory"),
    ("what meetings do I have this week on my calendar", "calendar__list_events"),
    ("merge a pull request", "github__merge_pull_request"),
    ("read the contents of a local file", "files__read_file"),
    ("schedule a meeting with bob", "calendar__create_event"),
    ("current weather in Paris", "weather__get_current_weather"),
    ("convert 3pm from Tokyo time to New York time", "time__convert_time"),
    ("show logs of a kubernetes pod", "kubernetes__get_pod_logs"),
    ("refund a customer payment in stripe", "stripe__create_refund"),
    ("send a text message to a phone", "twilio__send_sms"),
    ("who is on call right now", "pagerduty__get_oncall"),
    ("take a screenshot of the web page", "browser__screenshot"),
    ("translate this paragraph to French", "translate__translate_text"),
    ("commit my staged changes", "git__git_commit"),
    ("search the web for python asyncio tutorials", "websearch__web_search"),
    ("get the transcript of a youtube video", "youtube__get_transcript"),
    ("mark a todoist task as done", "todoist__complete_task"),
    ("driving directions from the airport to the hotel", "maps__directions"),
    ("create a github issue", "github__create_issue"),
    ("email alice the quarterly report", "gmail__send_email"),
    ("reply to a zendesk support ticket", "zendesk__add_ticket_comment"),
    ("scale the web deployment to 5 replicas", "kubernetes__scale_deployment"),
    ("describe the columns of the users table in postgres", "postgres__describe_table"),
    ("fetch a web page as markdown", "fetch__fetch_url"),
    ("how much did we spend on AWS last month", "aws__get_cost_and_usage"),
    ("move a trello card to done", "trello__move_card"),
    ("latest version of the react npm package", "npm__package_info"),
)
"""(query, the tool that answers it), as a user or model would phrase the need."""
