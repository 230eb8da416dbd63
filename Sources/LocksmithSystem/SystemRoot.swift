// The file-system root that system paths (/etc/machine-id, update.conf, /run/update-engine) are
// read under. "/" normally; tests and containers point it elsewhere with LOCKSMITH_ROOT.
import LocksmithCore

public enum SystemRoot {
    /// The environment variable naming another root, e.g. LOCKSMITH_ROOT=/tmp/node1.
    public static let variable = "LOCKSMITH_ROOT"

    /// The root in effect: $LOCKSMITH_ROOT when set and non-empty, else "/". A value that is not
    /// valid UTF-8 is an error: read as text it would name another directory.
    public static func current() throws -> String {
        if let root = try Syscalls.checkedEnvironment(variable), !root.isEmpty { return root }
        return "/"
    }

    /// `path` (absolute) under `root`.
    public static func resolve(_ path: String, root: String) -> String {
        if root == "/" || root.isEmpty { return path }
        let trimmed = root.hasSuffix("/") ? String(root.dropLast()) : root
        return trimmed + path
    }
}
