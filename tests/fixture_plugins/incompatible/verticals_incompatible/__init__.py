from verticals import hookimpl


@hookimpl
def register_tasks(register):
    pass
