"""One controller per tool: it turns the tool panel's requests into worker jobs and shows results.

Each controller gets the window (the composition root) and uses only its public parts: the
state, the job runner, the worker's request methods, the panels and the message bar.
"""
