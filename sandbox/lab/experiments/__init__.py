"""The chapters' own experiments, which a lesson imports by name: harness code that starts processes, drives load
and measures, kept out of the Django apps (which hold Django code only).

- async_inventory (chapter 02): which Django APIs exist, which are async, which do their own async I/O
- auction_run (chapter 09): the auction's processes, bids placed at once, a race held open on purpose
- asgi_stream (chapter 03): a streamed response read chunk by chunk, as an ASGI server passes it on, and a hang-up
- chat_clients (chapter 06): chat connections opened as a browser would, and a crowd of them held
- consumer_spans (chapter 06): which thread ran each consumer handler call, and when, drawn as a timeline
- connections (chapter 08): database connections counted under load
- middleware_probe (chapter 05): a middleware stack from a cell run under ASGI and WSGI, and what Django adapts
- orm_cost (chapter 04): ways of reading the same rows timed in turn, and drawn relative to one of them
- sqlite_lab (chapter 08): SQLite writers, readers and locks
- task_queues (chapter 07): the same job on four task queues, timed
- testing (chapter 08): the demo tests run under pytest-django in a child process
"""
