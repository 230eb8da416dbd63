// locksmithd's files under /run: coordinator.conf and the state file, read with the checks
// every reader needs, and the state file's text.
// Ordered as include/locksmith.h.
import CLocksmith
import Glibc
import LocksmithCore
import LocksmithEtcd
import LocksmithSystem

@c @implementation
public func locksmith_daemon_file_read(_ root: UnsafePointer<CChar>!, _ path: UnsafePointer<CChar>!, _ ret: UnsafeMutablePointer<OpaquePointer?>!, _ ret_modified: UnsafeMutablePointer<Int64>!) -> Int32 {
    call {
        let directory = try rootArgument(root)
        let file = try text(path, "path", limit: 4096)
        guard file.hasPrefix("/") else { throw invalid("path \(JSONText.quoted(file)) is not an absolute path") }
        let r = try out(ret, "ret")
        let contents = try DaemonFiles.read(file, root: directory)
        r.pointee = ConfigHandle.make(contents.values)
        ret_modified?.pointee = contents.modified
        return contents.liveness.rawValue
    }
}

@c @implementation
public func locksmith_daemon_state_text(_ strategy: UnsafePointer<CChar>!, _ state: UnsafePointer<CChar>!, _ state_since: Int64, _ slot_key: UnsafePointer<CChar>!, _ slot_id: UnsafePointer<CChar>!, _ slot_since: Int64, _ ret_text: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>!) -> Int32 {
    call {
        let r = try out(ret_text, "ret_text")
        var slot: DaemonFiles.Slot?
        switch (slot_key, slot_id) {
        case (nil, nil): slot = nil
        case (let key?, let id?):
            slot = DaemonFiles.Slot(key: try text(key, "slot_key", limit: 4096), id: try text(id, "slot_id", limit: SemaphoreDocument.maxHolderBytes + 1),
                                    since: slot_since >= 0 ? slot_since : nil)
        default:
            throw invalid("slot_key and slot_id are both set or both NULL")
        }
        r.pointee = try copyOut(DaemonFiles.stateText(strategy: try text(strategy, "strategy", limit: 256), state: try text(state, "state", limit: 256),
                                                      stateSince: state_since, slot: slot))
        return 0
    }
}
