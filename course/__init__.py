"""The course's own tools, behind the `course` command: open JupyterLab (cli), check and grade exercise notebooks
(grading, classroom), generate exercises from solutions (exercises), run notebooks (notebooks), build the static
site (site) and diagnose a machine (doctor). No notebook imports this package; it imports the runtime
(`sandbox.lab`) only where it runs notebooks, and the exercise checks only through their contract
(`sandbox.checks.contract`)."""
