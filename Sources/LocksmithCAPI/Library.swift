// The library itself: its version, its free functions for FFI callers, the thread's last error.
// Ordered as include/locksmith.h.
import CLocksmith
import Glibc
import LocksmithCore
import LocksmithEtcd
import LocksmithSystem

nonisolated(unsafe) private let versionString: UnsafeMutablePointer<CChar> = strdup(Version.string)!

@c @implementation
public func locksmith_version() -> UnsafePointer<CChar>! {
    UnsafePointer(versionString)
}

@c @implementation
public func locksmith_free(_ p: UnsafeMutableRawPointer!) {
    free(p)
}

@c @implementation
public func locksmith_strv_free(_ strv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>!) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>! {
    guard let strv else { return nil }
    var i = 0
    while let s = strv[i] {
        free(s)
        i += 1
    }
    free(strv)
    return nil
}

@c @implementation
public func locksmith_last_error() -> UnsafePointer<CChar>! {
    lastErrorMessage()
}
