// This machine's id, the name it holds a reboot slot under.
import LocksmithCore

public enum MachineID {
    public static let path = "/etc/machine-id"

    /// What to do when the file is missing or holds no machine id (what systemd does at boot).
    public static let fix = "make one with systemd-machine-id-setup"

    /// Reads /etc/machine-id under `root`: trimmed of surrounding blanks and newlines, and
    /// required to be 32 lower-case hex digits (`.badMessage` otherwise, `.notFound` if missing);
    /// the message says what is there and what to do.
    public static func read(root: String? = nil) throws -> String {
        let root = try root ?? SystemRoot.current()
        let file = SystemRoot.resolve(path, root: root)
        let bytes: [UInt8]
        do {
            bytes = try Syscalls.readFile(file, limit: 4096)
        } catch let error as LocksmithError where error.kind == .notFound {
            throw LocksmithError(.notFound, "\(error.message): this machine has no machine id: \(fix)")
        }
        let text = String(decoding: bytes, as: UTF8.self)
        let id = text.trimmingBlanks()
        guard id.utf8.count == 32, id.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else {
            let held = id.isEmpty ? "it is empty" : "it holds \(JSONText.quotedExcerpt(id))"
            throw LocksmithError(.badMessage, "\(file): not a machine id (expected 32 lower-case hex digits, \(held)): \(fix)")
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
