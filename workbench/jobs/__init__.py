"""Jobs: every long task (train, eval, merge, and later kinds) as a row in a persistent SQLite queue, run by
a supervisor as a worker process that outlives the request, the page and even the app."""
