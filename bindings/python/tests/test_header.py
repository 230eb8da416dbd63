"""Every function declared in include/locksmith.h has argtypes and restype configured in the
binding, and they are the C declaration's types (read from the header text, not from the binding),
including the function-pointer typedef of the trace callback."""
import ctypes
import re

import pytest
from conftest import HEADER

import locksmith
from locksmith import _native

P = ctypes.POINTER
OBJECTS = {"locksmith_semaphore": _native.Semaphore, "locksmith_window": _native.Window,
           "locksmith_config": _native.Config, "locksmith_client": _native.Client,
           "locksmith_groups": _native.Groups, "locksmith_daemon_settings": _native.DaemonSettings,
           "locksmith_holder_records": _native.HolderRecords}
SCALARS = {"int": ctypes.c_int, "int64_t": ctypes.c_int64, "uint64_t": ctypes.c_uint64}


def header_text():
    """The header without comments, preprocessor lines and attribute macros (LOCKSMITH_WARN_UNUSED)."""
    with open(HEADER) as f:
        text = f.read()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"^\s*#.*$", " ", text, flags=re.M)
    return re.sub(r"\bLOCKSMITH_WARN_UNUSED\b", " ", text)


def split_parameters(params):
    """The C types of a parameter list (names dropped)."""
    params = [] if params.strip() == "void" else [p.strip() for p in params.split(",")]
    types = []
    for p in params:
        p = " ".join(p.replace("*", " * ").split())
        types.append(re.sub(r"\s*\b\w+$", "", p))  # drop the parameter's name
    return types


def function_typedefs():
    """{name: (return type, [parameter types])} of every function-pointer typedef in the header:
    typedef void (*locksmith_trace_function)(const char *line, void *userdata);"""
    found = {}
    for m in re.finditer(r"typedef\s+([\w\s\*]+?)\s*\(\s*\*\s*(locksmith_\w+)\s*\)\s*\(([^()]*)\)\s*;", header_text()):
        found[m.group(2)] = (" ".join(m.group(1).replace("*", " * ").split()), split_parameters(m.group(3)))
    return found


def declarations():
    """{name: (return type, [parameter types])} of every locksmith_* function in the header."""
    text = header_text()
    text = re.sub(r"typedef\s+[^;]*;", " ", text)  # typedefs (the trace callback's is no function)
    found = {}
    for m in re.finditer(r"([A-Za-z_][\w\s\*]*?)\b(locksmith_\w+)\s*\(([^()]*)\)\s*;", text):
        returns, name, params = m.group(1), m.group(2), m.group(3)
        returns = " ".join(returns.replace("*", " * ").split())
        assert name not in found, "declared twice: " + name
        found[name] = (returns, split_parameters(params))
    return found


def expected_ctype(c_type, result=False):
    """The ctypes type the binding must use for a C type (see _native for why char ** is void *)."""
    words = c_type.split()
    stars = words.count("*")
    base = [w for w in words if w not in ("*", "const")]
    const = "const" in words
    assert len(base) == 1, c_type
    base = base[0]
    if base == "void":
        return {0: None, 1: ctypes.c_void_p}[stars]
    if base == "char":
        if stars == 1:
            assert const or result, "a char * the binding would write into: " + c_type
            return ctypes.c_char_p
        if stars == 3:  # char ***ret_strv: an array of malloc()ed strings, freed by the library
            assert not const, c_type
            return P(P(ctypes.c_void_p))
        assert stars == 2, c_type
        return P(ctypes.c_char_p) if const else P(ctypes.c_void_p)
    if base in OBJECTS:
        t = OBJECTS[base]
        for _ in range(stars):
            t = P(t)
        return t
    if base in TYPEDEFS:
        assert stars == 0, c_type
        returns, params = TYPEDEFS[base]
        # CFUNCTYPE caches its classes by signature: the header's is the binding's object.
        return ctypes.CFUNCTYPE(expected_ctype(returns, result=True), *[expected_ctype(p) for p in params])
    t = SCALARS[base]
    for _ in range(stars):
        t = P(t)
    return t


TYPEDEFS = function_typedefs()
DECLARED = declarations()


def test_the_header_declares_122_functions():
    assert len(DECLARED) == 122  # 41 in LOCKSMITH_1, 63 in LOCKSMITH_2, 3 in LOCKSMITH_3, 7 in LOCKSMITH_4, 7 in LOCKSMITH_5, 1 in LOCKSMITH_6
    assert "locksmith_progress_function" not in DECLARED
    assert "locksmith_client_free" in DECLARED and "locksmith_version" in DECLARED
    assert "locksmith_client_read" in DECLARED and "locksmith_config_load_at" in DECLARED
    assert "locksmith_client_set_trace" in DECLARED and "locksmith_slot_record_read" in DECLARED
    assert "locksmith_trace_function" not in DECLARED


def test_the_trace_function_type_is_the_headers():
    assert TYPEDEFS == {"locksmith_trace_function": ("void", ["const char *", "void *"]),
                        "locksmith_progress_function": ("int", ["int", "void *"])}
    assert _native.TraceFunction is expected_ctype("locksmith_trace_function")
    assert _native.TraceFunction._restype_ is None
    assert _native.TraceFunction._argtypes_ == (ctypes.c_char_p, ctypes.c_void_p)


def test_const_object_results_are_the_objects_pointer_types():
    assert DECLARED["locksmith_groups_semaphore"][0] == "const locksmith_semaphore *"
    assert DECLARED["locksmith_daemon_settings_window"][0] == "const locksmith_window *"
    assert _native.lib.locksmith_groups_semaphore.restype is _native.SemaphoreP
    assert _native.lib.locksmith_daemon_settings_window.restype is _native.WindowP


def test_the_prototypes_are_in_the_order_of_the_header():
    with open(HEADER) as f:
        order = list(dict.fromkeys(re.findall(r"\b(locksmith_\w+)\(", re.sub(r"/\*.*?\*/", " ", f.read(), flags=re.S))))
    assert list(_native.PROTOTYPES) == order


def test_the_flag_is_the_headers():
    with open(HEADER) as f:
        m = re.search(r"#define LOCKSMITH_NO_ENVIRONMENT \(UINT64_C\(1\) << (\d+)\)", f.read())
    assert m, "LOCKSMITH_NO_ENVIRONMENT is not defined as (UINT64_C(1) << N)"
    assert _native.NO_ENVIRONMENT == 1 << int(m.group(1))


def test_the_version_macros_are_the_librarys():
    with open(HEADER) as f:
        text = f.read()
    macros = dict(re.findall(r"^#define (LOCKSMITH_VERSION\w*) (\S+)$", text, flags=re.M))
    version = locksmith.version()
    major, minor, patch = (int(x) for x in version.split("."))
    assert macros["LOCKSMITH_VERSION"] == '"%s"' % version
    assert (int(macros["LOCKSMITH_VERSION_MAJOR"]), int(macros["LOCKSMITH_VERSION_MINOR"]),
            int(macros["LOCKSMITH_VERSION_PATCH"])) == (major, minor, patch)
    assert int(macros["LOCKSMITH_VERSION_NUM"], 16) == major << 16 | minor << 8 | patch


def test_the_binding_configures_exactly_the_declared_functions():
    assert sorted(_native.PROTOTYPES) == sorted(DECLARED)


@pytest.mark.parametrize("name", sorted(DECLARED))
def test_argtypes_and_restype_match_the_header(name):
    returns, params = DECLARED[name]
    function = getattr(_native.lib, name)
    assert function.argtypes is not None, name + " has no argtypes"
    assert list(function.argtypes) == [expected_ctype(p) for p in params], (name, params)
    assert function.restype is expected_ctype(returns, result=True), (name, returns, function.restype)


def test_objects_of_one_kind_cannot_be_passed_as_another():
    window = locksmith.Window("02:00", "1h")
    with pytest.raises(ctypes.ArgumentError):
        _native.lib.locksmith_semaphore_holder_count(window._pointer)
    window.close()
