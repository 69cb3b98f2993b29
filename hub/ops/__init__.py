"""Operations: structured logs, the access log, spend-log retention (hub/ops/*)."""
