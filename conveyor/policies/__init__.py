"""Pure policy decisions (retry, rate limit, concurrency, unique) with thin runtime glue."""
