// The reboot slot this machine holds under its own id, as the daemon (or `locksmithctl reboot`)
// recorded it: what the daemon may give back at its next start.
import Glibc
import LocksmithCore

/// /var/lib/locksmith/reboot-slot: the slot this machine's daemon took and has not given back,
/// kept across the reboot. At its next start the daemon gives back exactly that slot, and only
/// that one: a slot held under the machine id by anyone else (`locksmithctl lock`, a
/// `locksmith-run --id`) is not the daemon's to free.
public enum SlotRecord {
    public static let path = "/var/lib/locksmith/reboot-slot"

    public enum State: Equatable, Sendable {
        /// No file: the daemon never ran here (or a version that kept no record did).
        case missing
        case notHeld
        /// The slot of `id` in the semaphore at `key` (an etcd key: plain ASCII).
        case held(key: String, id: String)
        /// A file that is not a record; the message says why.
        case unreadable(String)
    }

    public static func file(root: String) -> String { SystemRoot.resolve(path, root: root) }

    public static func read(root: String) -> State {
        let file = file(root: root)
        let bytes: [UInt8]
        do {
            bytes = try Syscalls.readFile(file, limit: 4096, followLinks: false)
        } catch let error as LocksmithError where error.kind == .notFound {
            return .missing
        } catch {
            return .unreadable("\(error)")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else { return .unreadable("\(file): not UTF-8 text") }
        var values: [String: String] = [:]
        for (key, value) in EnvironmentFile.parse(text).assignments { values[key] = value }
        switch values["HELD"] {
        case "no"?: return .notHeld
        case "yes"?:
            guard let key = values["KEY"], GroupKey.group(ofKey: key) != nil, let id = values["ID"],
                  (try? SemaphoreDocument.validateHolder(id)) != nil else {
                return .unreadable("\(file): HELD=yes without a valid KEY and ID")
            }
            return .held(key: key, id: id)
        default:
            return .unreadable("\(file): no HELD=yes or HELD=no line")
        }
    }

    /// `value` in double quotes, with the characters that are special there escaped.
    static func quoted(_ value: String) -> String {
        var out = "\""
        for c in value.unicodeScalars {
            if c == "\"" || c == "\\" || c == "`" || c == "$" { out += "\\" }
            out.unicodeScalars.append(c)
        }
        return out + "\""
    }

    /// Records that `id` holds a slot of the semaphore at `key` (nil: that no slot is held).
    public static func write(held: (key: String, id: String)?, root: String) throws {
        if let held {
            // Keys are escaped: a control character or a blank in one means it is not a key.
            guard GroupKey.group(ofKey: held.key) != nil, !held.key.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7f }) else {
                throw LocksmithError(.invalidArgument, "\(JSONText.quotedExcerpt(held.key)) is not a semaphore key", option: "key")
            }
            try SemaphoreDocument.validateHolder(held.id)
        }
        let file = file(root: root)
        try Syscalls.makeDirectories(String(file[..<file.lastIndex(of: "/")!]))
        var text = "# locksmithd: the reboot slot this machine's daemon holds (it gives it back at its next start)\n"
        if let held {
            // Double-quoted, so that what is read back is exactly what was written.
            text += "HELD=yes\nKEY=\(quoted(held.key))\nID=\(quoted(held.id))\n"
        } else {
            text += "HELD=no\n"
        }
        try Syscalls.replaceFile(file, with: text)
    }

}
