"""The plugin of docs/plugins.md ("A plugin in 20 lines") is installed and run as the page says (issue 25 item 6).

The page's ``my_plugin.py`` and ``pyproject.toml`` blocks are read from the page itself, laid out as pip lays out an
installed distribution (the module, and a dist-info folder with the entry points the TOML declares), and the
page's own command runs in a subprocess: ``verticals run demo.words notes.csv -o counts.csv``. An edit of the page
that breaks the example fails here."""

import csv
import os
import re
import shlex
import tomllib

from tests.conftest import REPO, run_cli

PAGE = REPO / "docs" / "plugins.md"


def _blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.M | re.S)


def _example() -> tuple[str, str, dict, str]:
    page = PAGE.read_text(encoding="utf-8")
    section = page[page.index("## A plugin in 20 lines"):]
    section = section[:section.index("\n## ", 1)]
    [module] = [block for block in _blocks(section, "python") if block.startswith("# my_plugin.py")]
    [project] = [tomllib.loads(block) for block in _blocks(section, "toml")]
    [command] = re.findall(r"`(verticals run [^`]+)`", section)
    return "my_plugin", module, project["project"], command


def test_the_docs_example_plugin_installs_and_runs_as_printed(tmp_path):
    name, module, project, command = _example()
    site = tmp_path / "site-packages"
    site.mkdir()
    (site / f"{name}.py").write_text(module, encoding="utf-8")
    dist = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
        + "".join(f"Requires-Dist: {requirement}\n" for requirement in project.get("dependencies", [])),
        encoding="utf-8")
    groups = project["entry-points"]
    (dist / "entry_points.txt").write_text(
        "".join(f"[{group}]\n" + "".join(f"{key} = {value}\n" for key, value in points.items()) + "\n"
                for group, points in groups.items()), encoding="utf-8")
    plugin = next(iter(groups["verticals"]))

    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.csv").write_text("text\nthree words here\none\n", encoding="utf-8")
    env = {"PYTHONPATH": os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])]),
           "VERTICALS_LOAD_PLUGINS": plugin, "VERTICALS_STRICT_PLUGINS": "1"}
    listed = run_cli("plugins", "list", env=env)
    assert listed.returncode == 0 and plugin in listed.stdout + listed.stderr, listed.stderr

    args = shlex.split(command)[1:]  # the page's command, its files inside the work folder
    args = [str(work / arg) if arg.endswith((".csv", ".jsonl")) else arg for arg in args]
    ran = run_cli(*args, env=env)
    assert ran.returncode == 0, ran.stderr
    with (work / "counts.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["text"], row["words"]) for row in rows] == [("three words here", "3"), ("one", "1")]
