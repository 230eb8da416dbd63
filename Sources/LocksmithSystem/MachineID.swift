// This machine's id, the name it holds a reboot slot under.
import LocksmithCore

public enum MachineID {
    public static let path = "/etc/machine-id"

    /// Reads /etc/machine-id under `root`: trimmed of surrounding blanks and newlines, and
    /// required to be 32 lower-case hex digits (`.badMessage` otherwise, `.notFound` if missing).
    public static func read(root: String? = nil) throws -> String {
        let root = try root ?? SystemRoot.current()
        let file = SystemRoot.resolve(path, root: root)
        let bytes = try Syscalls.readFile(file, limit: 4096)
        let text = String(decoding: bytes, as: UTF8.self)
        let id = text.trimmingBlanks()
        guard id.utf8.count == 32, id.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else {
            throw LocksmithError(.badMessage, "\(file): not a machine id (expected 32 lower-case hex digits)")
        }
        return id
    }
}

extension String {
    /// Without leading and trailing spaces, tabs, CRs and newlines.
    public func trimmingBlanks() -> String {
        let blank: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" || $0 == "\r\n" }
        guard let first = firstIndex(where: { !blank($0) }), let last = lastIndex(where: { !blank($0) }) else { return "" }
        return String(self[first...last])
    }
}
