"""Second reference: renders the same chat-template and Jinja cases with Python Jinja2 configured the way
transformers' apply_chat_template configures it (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks,
loopcontrols, its tojson, raise_exception and strftime_now). Run after generate.mjs:

    python3 render_python.py

The tests accept the Python rendering only where @huggingface/jinja and Python Jinja2 disagree
(e.g. str.strip(chars), which the JS reference ignores the argument of) or where the JS reference lacks a filter.
"""
import json
import os
from datetime import datetime

from jinja2.exceptions import TemplateError
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "tests", "SharpTune.Tests", "Tokenization", "data")


def raise_exception(message):
    raise TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(fmt):
    return datetime.now().strftime(fmt)


def environment():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def render(env, source, context):
    try:
        return {"output": env.from_string(source).render(**context)}
    except Exception as e:  # the tests only need to know that Python failed too
        return {"error": f"{type(e).__name__}: {e}"}


def main():
    env = environment()
    with open(os.path.join(DATA, "chat-template-cases.json"), encoding="utf-8") as f:
        chat = json.load(f)
    with open(os.path.join(DATA, "jinja-cases.json"), encoding="utf-8") as f:
        jinja = json.load(f)
    chat_out = [render(env, chat["templates"][c["template"]], c["context"]) for c in chat["cases"]]
    jinja_out = {c["name"]: render(env, c["template"], c.get("context", {})) for c in jinja}
    with open(os.path.join(DATA, "python-jinja2-expected.json"), "w", encoding="utf-8") as f:
        json.dump({"chat_cases": chat_out, "jinja_cases": jinja_out}, f, ensure_ascii=False, indent=1)
    same = sum(1 for c, p in zip(chat["cases"], chat_out) if c.get("output") == p.get("output"))
    print(f"python jinja2: {same}/{len(chat_out)} chat cases identical to @huggingface/jinja")


if __name__ == "__main__":
    main()
