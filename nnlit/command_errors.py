"""What the ``nnlit`` command says of an error: one line, and whether it was foreseen (bad input, a file).

Used by :func:`nnlit.cli.main` for every subcommand and by ``nnlit tune`` for a failed trial.
"""

from __future__ import annotations

import difflib
import re
import sys

from jsonargparse import ArgumentError
from lightning.pytorch import Trainer

from nnlit.arguments import init_arguments
from nnlit.callbacks.non_finite_loss import NonFiniteLossError

#: errors of bad input or files: their message is the whole story
_FORESEEN = (ValueError, TypeError, LookupError, OSError, ImportError, ArgumentError)
_UNION = "Does not validate against any of the Union subtypes"


def explain(err: BaseException) -> tuple[str, bool]:
    """An error's message for the command line, and whether it is a foreseen kind (bad input, a file).

    jsonargparse wraps the error a class raises in its ``__init__`` into "Does not validate against any of the Union
    subtypes", followed by the config's whole value: the original error (its cause) is the message. A value the
    parser refuses is told as its key, what is accepted and what was given."""
    if isinstance(err, ArgumentError):
        return _parser_message(str(err)), True
    while _UNION in str(err) and err.__cause__ is not None:
        err = err.__cause__
    text = str(err).strip() or type(err).__name__
    if isinstance(err, NonFiniteLossError):  # a fit that diverged: its message is the story, the exit status 1
        return text, False
    foreseen = isinstance(err, _FORESEEN)
    return (text if foreseen else f"{type(err).__name__}: {text}"), foreseen


def _parser_message(text: str) -> str:
    """``data.batch_size: expected int, got 'abc'`` from jsonargparse's many-line report of a refused value."""
    key = ".".join(re.findall(r'Parser key "([^"]+)"', text))
    foreign = re.search(r"Import path (\S+) does not correspond to a subclass of (\w+)", text)
    if foreign is not None:  # a class_path naming a function or another class
        return f"{key}.class_path: {foreign.group(1)!r} is not a subclass of {foreign.group(2)}"
    nested = "Problem with given class_path" in text  # then a NoneType alternative is the whole class's, not the key's
    accepted = [
        t for t in re.findall(r"Expected a <class '(?:[\w.]+\.)?(\w+)'>", text) if not (nested and t == "NoneType")
    ]
    accepted += re.findall(r"Expected a typing\.Literal\[([^\]]+)\]", text)  # the choices, quoted: 'auto
    given = re.search(r"Got value: (.*)", text) or re.search(r"Given value: (.*)", text)
    if accepted and given is not None:
        names = " or ".join(dict.fromkeys("null" if name == "NoneType" else name for name in accepted))
        return f"{key}: expected {names}, got {given.group(1).strip()!r}"
    nested_option = re.search(r"Option '(\w+)' is not accepted\. Got value: Namespace\(class_path='([\w.]+)'", text)
    if nested_option is not None:  # an optimizer's (a callable's) init_args: the class is the one named there
        option, owner_path = nested_option.groups()
        return f"{key}: Option {option!r} is not accepted ({owner_path})" + _suggestion(
            f"Option '{option}' is not accepted", owner_path, skip=("params",)
        )
    skipped = ("Subtypes:", "Given value", "Errors:", _UNION, "- Expected a <class 'NoneType'>", "- Problem with")
    lines = [re.sub(r'^(- )?Parser key "[^"]+":\s*', "", line.strip()) for line in text.splitlines()]
    details = [line for line in lines if line and not line.startswith(skipped)]
    detail = details[-1] if details else text.strip()
    owner = re.search(r"Problem with given class_path '([^']+)'", text)
    message = (f"{key}: " if key else "") + detail + (f" ({owner.group(1)})" if owner else "")
    return message + _suggestion(text, owner.group(1) if owner else None)


def _suggestion(text: str, owner: str | None, skip: tuple[str, ...] = ()) -> str:
    """`` Did you mean 'hidden'? Accepted: …`` for an option a class does not take, ``--trainer.max_epochs`` for an
    unrecognised ``--trainer.epochs``; ``""`` when nothing is close. Only classes already imported are looked at."""
    unknown = re.search(r"Option '(\w+)' is not accepted", text)
    if unknown is not None and owner is not None:
        module, _, name = owner.rpartition(".")
        cls = getattr(sys.modules.get(module), name, None)  # the parser has imported it: nothing new is imported
        accepted = [name for name in init_arguments(cls) if name not in skip] if isinstance(cls, type) else []
        close = difflib.get_close_matches(unknown.group(1), accepted, n=1)
        listed = f" Accepted: {', '.join(accepted)}." if accepted else ""
        return (f". Did you mean {close[0]!r}?" if close else ".") + listed if accepted else ""
    unrecognised = re.search(r"unrecognized arguments: --([\w.]+)", text)
    if unrecognised is not None:
        section, _, option = unrecognised.group(1).rpartition(".")
        if section in ("", "trainer"):
            close = difflib.get_close_matches(option, init_arguments(Trainer), n=2)
            ratio = [difflib.SequenceMatcher(None, option, name).ratio() for name in close]
            close = [name for name, r in zip(close, ratio, strict=True) if r == max(ratio)]  # both only when a tie
            if close:
                return f". Did you mean {' or '.join(f'--trainer.{name}' for name in close)}?"
    return ""
