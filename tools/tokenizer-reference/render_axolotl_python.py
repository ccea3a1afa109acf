"""Adds Python Jinja2's rendering (configured as transformers' apply_chat_template) to each case of
axolotl-template-cases.json, after `node axolotl-templates.mjs`. The test arbitrates with it where @huggingface/jinja
fails or disagrees (e.g. axolotl's llava template uses the {% generation %} tag, which only transformers defines)."""
import json
import os

from jinja2 import nodes
from jinja2.ext import Extension

from render_python import DATA, environment, render


class GenerationTag(Extension):
    """transformers' AssistantTracker: {% generation %}...{% endgeneration %} renders its body unchanged."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def pinned_strftime(fmt):
    return fmt.replace("%Y", "2025").replace("%m", "01").replace("%d", "15").replace("%b", "Jan").replace("%B", "January")


def main():
    env = environment()
    env.add_extension(GenerationTag)
    env.globals["strftime_now"] = pinned_strftime
    path = os.path.join(DATA, "axolotl-template-cases.json")
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    here = os.path.dirname(os.path.abspath(__file__))
    template_dir = os.path.join(here, "..", "..", "src", "SharpTune", "Tokenization", "ChatTemplates")
    sources = {n: open(os.path.join(template_dir, n + ".jinja"), encoding="utf-8").read() for n in data["templates"]}
    same = 0
    for case in data["cases"]:
        python = render(env, sources[case["template"]], case["context"])
        case["python"] = python.get("output")
        case["python_error"] = python.get("error")
        same += case.get("output") is not None and case.get("output") == case["python"]
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, indent=1)
    print(f"python jinja2: {same}/{len(data['cases'])} cases identical to @huggingface/jinja")


if __name__ == "__main__":
    main()
