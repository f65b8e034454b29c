"""Bad input is a usage error (2) with one line, never a network or not-found code; read-only commands
never write; messages carry no Python reprs."""

from __future__ import annotations

import pytest

IMG = "example.org/test/img:1"


def one_error(result, code):
    rc, out, err = result
    lines = err.strip().splitlines()
    assert rc == code and len(lines) == 1 and lines[0].startswith("hpcbox: error: "), (rc, out, err)
    assert "unexpected" not in lines[0] and "Error(" not in lines[0]
    return lines[0]


@pytest.mark.parametrize("args, words", [
    (("pull", "127.0.0.1:99999/x/y:1"), "invalid port 99999"),
    (("pull", "--platform", "linux/../../etc", "127.0.0.1:5000/x:1"), "invalid platform"),
    (("create", "--platform", "linux/am d64", "127.0.0.1:5000/x:1"), "invalid platform"),
])
def test_bad_references_and_platforms_are_usage_errors(cli, args, words):
    assert words in one_error(cli(*args), 2)


def test_an_unbalanced_template_is_a_usage_error(cli):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("_h", Path(__file__).with_name("test_containers.py"))
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    helpers.add_image(cli.store, IMG)
    for template in ("{{", "{{.Config", "}}", "x {{.Id}} {{"):
        assert "template" in one_error(cli("inspect", "-f", template, IMG), 2)
    code, out, _ = cli("inspect", "-f", "{{.Id}}", IMG)
    assert code == 0 and out.strip()


def test_a_store_that_is_a_file_is_named_and_never_written(cli, tmp_path):
    home = tmp_path / "afile"
    home.write_text("not a store")
    from hpcbox.main import main

    for args in (("images",), ("ps",), ("images", "--json")):
        try:
            code = main(["--home", str(home), *args])
        except SystemExit as exc:
            code = exc.code
        assert code != 0
    assert home.read_text() == "not a store"


def test_images_of_a_file_home_says_so(cli, tmp_path, capsys):
    home = tmp_path / "afile"
    home.write_text("x")
    from hpcbox.main import main

    assert main(["--home", str(home), "images"]) == 1
    line = capsys.readouterr().err.strip()
    assert "is not a directory" in line and "--home DIR" in line and "writing" not in line


def _main(*args):
    from hpcbox.main import main

    try:
        return main(list(args))
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize("args", [("ps",), ("ps", "--json"), ("inspect", IMG), ("rm", "x"), ("prune",),
                                  ("login", "-u", "me", "-p", "pw", "127.0.0.1:9"), ("logout", "127.0.0.1:9"),
                                  ("logout", "-a")])
def test_every_command_on_a_file_home_says_the_store_is_not_a_directory(cli, tmp_path, capsys, args):
    home = tmp_path / "afile"
    home.write_text("not a store")
    code = _main("--home", str(home), *args)
    line = one_error((code, "", capsys.readouterr().err), code)
    assert code != 0 and str(home) in line and "is not a directory" in line and "--home" in line, line
    assert "Errno" not in line
    assert home.read_text() == "not a store"


def test_info_on_a_file_home_reads_no_config_there(cli, tmp_path, capsys):
    home = tmp_path / "afile"
    home.write_text("not a store")
    code = _main("--home", str(home), "info")
    err = capsys.readouterr().err
    assert "Errno" not in err and "config.json" not in err, (code, err)
    assert home.read_text() == "not a store"


def test_load_of_a_file_that_is_no_archive_says_so_plainly(cli):
    line = one_error(cli("load", "-i", "/etc/passwd"), 2)
    assert "not a tar, tar.gz, tar.bz2 or tar.xz file" in line and "ReadError" not in line


def test_rmi_while_a_create_holds_the_store_names_both(cli):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("_h", Path(__file__).with_name("test_containers.py"))
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    helpers.add_image(cli.store, IMG)
    with cli.store.gc_lock(shared=True):  # what a running create (or pull) holds
        code, _, err = cli("rmi", "-f", IMG)
    assert code == 0 and "a pull or create is running" in err
