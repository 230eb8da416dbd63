"""Smoke test of liblocksmith from Python through ctypes: the version and one semaphore round
trip. Usage: python3 smoke.py PATH/TO/liblocksmith.so.1"""
import ctypes
import sys

lib = ctypes.CDLL(sys.argv[1])
lib.locksmith_version.argtypes = []
lib.locksmith_version.restype = ctypes.c_char_p
lib.locksmith_semaphore_new.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
lib.locksmith_semaphore_new.restype = ctypes.c_int
lib.locksmith_semaphore_lock.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
lib.locksmith_semaphore_lock.restype = ctypes.c_int
lib.locksmith_semaphore_to_json.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)]
lib.locksmith_semaphore_to_json.restype = ctypes.c_int
lib.locksmith_semaphore_free.argtypes = [ctypes.c_void_p]
lib.locksmith_semaphore_free.restype = ctypes.c_void_p
lib.locksmith_free.argtypes = [ctypes.c_void_p]
lib.locksmith_free.restype = None

passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAILED:", what, file=sys.stderr)


version = lib.locksmith_version().decode()
check(version.count(".") == 2, "version looks like x.y.z: %r" % version)

sem = ctypes.c_void_p()
check(lib.locksmith_semaphore_new(ctypes.byref(sem)) == 0, "semaphore_new")
check(lib.locksmith_semaphore_lock(sem, b"node1") == 0, "lock node1")
check(lib.locksmith_semaphore_lock(sem, b"node2") == -16, "lock node2 is -EBUSY")
out = ctypes.c_void_p()
check(lib.locksmith_semaphore_to_json(sem, ctypes.byref(out)) == 0, "to_json")
text = ctypes.string_at(out.value).decode()
check(text == '{"semaphore":0,"max":1,"holders":["node1"]}', "json is %r" % text)
lib.locksmith_free(out)
check(lib.locksmith_semaphore_free(sem) is None, "semaphore_free returns NULL")

print("Python ctypes: %d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
