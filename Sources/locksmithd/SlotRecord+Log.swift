// The daemon's side of the slot record (LocksmithSystem.SlotRecord).
import LocksmithSystem

extension SlotRecord {
    /// `write`, with a failure logged rather than thrown (for when nothing else depends on it).
    static func writeLogged(held: (key: String, id: String)?, root: String) {
        do {
            try write(held: held, root: root)
        } catch {
            Log.warning("\(error)")
        }
    }
}
