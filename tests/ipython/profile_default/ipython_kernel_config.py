# Plain tracebacks in test logs: ANSI colours survive --color=no otherwise.
c.InteractiveShell.colors = "nocolor"
