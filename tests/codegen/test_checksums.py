"""Frozen production contracts: check_sums files and `canopy check`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from canopy.cli import main
from canopy.codegen.checksums import check, write_checksums
from canopy.idl import compile_file, fingerprint

SOURCE = """\
namespace shop {
    [inline] namespace v1 {
        [status=production]
        struct item { std::string name; int price = 0; };

        [status=production, description="The till"]
        interface i_till {
            error_code add(const item& it, [out] int& total);
            error_code clear();
        };

        interface i_draft { error_code anything(int x); };
    }
}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "shop.idl").write_text(SOURCE, encoding="utf-8")
    return tmp_path


def test_generate_writes_one_file_per_interface_and_struct(project: Path) -> None:
    model = compile_file(project / "shop.idl")
    written = write_checksums(model, project / "check_sums")
    names = sorted(str(p.relative_to(project / "check_sums")) for p in written)
    assert names == [
        "development/shop::v1::i_draft",
        "production/shop::v1::i_till",
        "production/shop::v1::item",
    ]
    till = (project / "check_sums/production/shop::v1::i_till").read_text().splitlines()
    assert till[0] == str(fingerprint(model, "shop::i_till"))
    assert till[1] == "interface shop::v1::i_till"
    assert till[2].startswith("method 1 error_code add(in #")


def test_unchanged_contracts_pass(project: Path) -> None:
    model = compile_file(project / "shop.idl")
    write_checksums(model, project / "check_sums")
    assert check(model, project / "check_sums") == []


def test_description_edits_pass(project: Path) -> None:
    write_checksums(compile_file(project / "shop.idl"), project / "check_sums")
    idl = project / "shop.idl"
    idl.write_text(SOURCE.replace("The till", "The shop's till"), encoding="utf-8")
    assert check(compile_file(idl), project / "check_sums") == []


def test_development_interfaces_may_change(project: Path) -> None:
    write_checksums(compile_file(project / "shop.idl"), project / "check_sums")
    idl = project / "shop.idl"
    idl.write_text(SOURCE.replace("anything(int x)", "anything(double x)"), encoding="utf-8")
    assert check(compile_file(idl), project / "check_sums") == []


def test_a_changed_production_interface_fails_naming_the_change(project: Path) -> None:
    write_checksums(compile_file(project / "shop.idl"), project / "check_sums")
    idl = project / "shop.idl"
    idl.write_text(SOURCE.replace("error_code clear();", "error_code clear(int keep);"))
    [problem] = check(compile_file(idl), project / "check_sums")
    assert problem.startswith("interface shop::v1::i_till is [status=production] and its contract")
    assert "  was: method 2 error_code clear()\n" in problem
    assert "  now: method 2 error_code clear(in int32_t keep)\n" in problem
    assert "add the new version in a new inline namespace (for example v2 beside v1)" in problem


def test_a_changed_production_struct_fails_and_so_do_its_users(project: Path) -> None:
    write_checksums(compile_file(project / "shop.idl"), project / "check_sums")
    idl = project / "shop.idl"
    idl.write_text(SOURCE.replace("int price = 0;", "int64_t price = 0;"))
    problems = check(compile_file(idl), project / "check_sums")
    assert [p.split(" is ")[0] for p in problems] == [
        "struct shop::v1::item",
        "interface shop::v1::i_till",
    ]
    assert "  now: field int64_t price = 0" in problems[0]


def test_missing_checksum_file_is_reported(project: Path) -> None:
    problems = check(compile_file(project / "shop.idl"), project / "check_sums")
    assert len(problems) == 2
    assert "has no checksum file" in problems[0]
    assert "run `canopy generate`" in problems[0]


def test_canopy_check_command(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    copy = project / "copy"
    copy.mkdir()
    shutil.copy(project / "shop.idl", copy / "shop.idl")
    model = compile_file(copy / "shop.idl")
    write_checksums(model, copy / "check_sums")
    assert main(["check", str(copy / "shop.idl")]) == 0
    assert "every production contract matches" in capsys.readouterr().out

    (copy / "shop.idl").write_text(SOURCE.replace("int& total", "long& total"))
    assert main(["check", str(copy / "shop.idl")]) == 1
    err = capsys.readouterr().err
    assert "interface shop::v1::i_till is [status=production]" in err
    assert "now: method 1 error_code add(in #" in err


def test_canopy_reports_idl_errors_with_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.idl"
    bad.write_text("struct s { std::optional<int> x; };\n")
    assert main(["check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:1:12: error: std::optional is not allowed: use rpc::optional<T>" in err


def test_canopy_generate_command(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = project / "generated"
    assert main(["generate", str(project / "shop.idl"), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out / 'shop' / 'v1' / '__init__.py'}" in printed
    assert "wrote 3 checksum file(s) under" in printed
    assert (project / "check_sums" / "production" / "shop::v1::i_till").is_file()
    assert main(["check", str(project / "shop.idl")]) == 0


def test_generate_takes_include_paths_and_defines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "inc").mkdir()
    (tmp_path / "inc" / "width.idl").write_text("#define WIDTH_T int64_t\n")
    (tmp_path / "svc.idl").write_text(
        '#include "width.idl"\n#ifdef WIDE\nstruct s { WIDTH_T v; };\n#endif\n'
    )
    args = ["generate", str(tmp_path / "svc.idl"), "-o", str(tmp_path / "out")]
    assert main([*args, "-I", str(tmp_path / "inc"), "-D", "WIDE"]) == 0
    assert "v: _cg.int64" in (tmp_path / "out" / "svc" / "__init__.py").read_text()
