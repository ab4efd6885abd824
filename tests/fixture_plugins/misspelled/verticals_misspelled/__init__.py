from verticals import hookimpl


@hookimpl
def register_task(register):  # misspelled on purpose: the hook is register_tasks
    pass
