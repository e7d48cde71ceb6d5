"""What compare_flow.py's end step says (a test edits it between two runs)."""


def note():
    return "<b>first</b> & plain"
