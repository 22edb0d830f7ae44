"""Checks the ctypes declarations of aidb._capi against aidb.h as a C
compiler sees it: a C program generated from the header prints the size and
alignment of every struct, the offset of every field and the value of every
AIDB_* constant, and each must match (AIDB_X of the header is _capi.X).
Fields are enumerated from the header, so a missing field fails even where
tail padding would hide it from a size comparison.

The header is $AIDB_INCLUDE_DIR/aidb.h, else pkg-config's, else the
repository's include/aidb.h; the compiler is $CC, else cc."""
import ctypes
import os
import pathlib
import re
import subprocess

from aidb import _capi as C


def header_dir():
    if os.environ.get("AIDB_INCLUDE_DIR"):
        return pathlib.Path(os.environ["AIDB_INCLUDE_DIR"])
    try:
        out = subprocess.run(["pkg-config", "--variable=includedir", "aidb"], capture_output=True,
                             text=True, check=True).stdout.strip()
        if (pathlib.Path(out) / "aidb.h").is_file():
            return pathlib.Path(out)
    except (OSError, subprocess.CalledProcessError):
        pass
    return pathlib.Path(__file__).resolve().parents[3] / "include"


def parse_header(text):
    """([(struct, [field, ...]), ...], [constant, ...]) of the header."""
    h = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    h = re.sub(r"//[^\n]*", "", h)
    structs = []
    for name, body in re.findall(r"typedef struct (\w+) \{(.*?)\} \1;", h, flags=re.S):
        fields = [re.findall(r"\w+", decl.split("[")[0])[-1]
                  for decl in body.split(";") if decl.strip()]
        structs.append((name, fields))
    consts = [n for n, v in re.findall(r"^\s*#define (AIDB_\w+)[ \t]+(\S.*)$", h, flags=re.M)
              if n not in ("AIDB_H", "AIDB_EXPORT")]
    for body in re.findall(r"enum \{(.*?)\}", h, flags=re.S):
        consts += [m.split("=")[0].strip() for m in body.split(",") if m.strip()]
    return structs, consts


def c_report(include, structs, consts, tmp):
    lines = ["#include <stddef.h>", "#include <stdio.h>", "#include <aidb.h>", "int main(void) {"]
    for s, fields in structs:
        lines.append(f'  printf("struct {s} %zu %zu\\n", sizeof({s}), _Alignof({s}));')
        lines += [f'  printf("field {s} {f} %zu\\n", offsetof({s}, {f}));' for f in fields]
    for k in consts:
        if k == "AIDB_VERSION":
            lines.append(f'  printf("const {k} %s\\n", {k});')
        else:
            lines.append(f'  printf("const {k} %lld\\n", (long long)({k}));')
    lines += ["  return 0;", "}"]
    src, exe = tmp / "layout.c", tmp / "layout"
    src.write_text("\n".join(lines) + "\n")
    subprocess.run([os.environ.get("CC", "cc"), "-std=c11", "-Wall", "-Werror", "-I", str(include),
                    str(src), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    return set(out.splitlines())


def test_every_struct_field_and_constant_matches_the_header(tmp_path):
    include = header_dir()
    structs, consts = parse_header((include / "aidb.h").read_text())
    assert len(structs) >= 10 and len(consts) >= 30, (structs, consts)
    report = c_report(include, structs, consts, tmp_path)
    problems = []
    for name, fields in structs:
        cls = getattr(C, name, None)
        if cls is None:
            problems.append(f"{name} is not declared")
            continue
        declared = [f[0] for f in cls._fields_]
        if declared != fields:
            problems.append(f"{name}: header fields {fields}, ctypes {declared}")
        if f"struct {name} {ctypes.sizeof(cls)} {ctypes.alignment(cls)}" not in report:
            problems.append(f"{name}: ctypes size {ctypes.sizeof(cls)} align {ctypes.alignment(cls)}")
        for f in declared:
            if f"field {name} {f} {getattr(cls, f).offset}" not in report:
                problems.append(f"{name}.{f}: ctypes offset {getattr(cls, f).offset}")
    for k in consts:
        value = getattr(C, k[len("AIDB_"):], None)
        if value is None:
            problems.append(f"{k} is not declared (as _capi.{k[len('AIDB_'):]})")
        elif f"const {k} {value}" not in report:
            problems.append(f"{k}: _capi has {value!r}")
    assert not problems, f"aidb._capi differs from {include}/aidb.h:\n" + "\n".join(problems)

