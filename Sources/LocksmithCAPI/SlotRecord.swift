// The reboot-slot record (/var/lib/locksmith/reboot-slot).
// Ordered as include/locksmith.h.
import CLocksmith
import Glibc
import LocksmithCore
import LocksmithEtcd
import LocksmithSystem

@c @implementation
public func locksmith_slot_record_write(_ root: UnsafePointer<CChar>!, _ key: UnsafePointer<CChar>!, _ id: UnsafePointer<CChar>!) -> Int32 {
    call {
        let directory = try rootArgument(root)
        switch (key, id) {
        case (nil, nil):
            try SlotRecord.write(held: nil, root: directory)
        case (let key?, let id?):
            let keyText = try text(key, "key", limit: 4096), idText = try text(id, "id", limit: SemaphoreDocument.maxHolderBytes + 1)
            try SlotRecord.write(held: (keyText, idText), root: directory)
        default:
            throw invalid("key and id are both set or both NULL")
        }
        return 0
    }
}

@c @implementation
public func locksmith_slot_record_read(_ root: UnsafePointer<CChar>!, _ ret_key: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>!, _ ret_id: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>!) -> Int32 {
    call {
        switch SlotRecord.read(root: try rootArgument(root)) {
        case .missing: throw LocksmithError(.notFound, "\(SlotRecord.path) does not exist")
        case .unreadable(let why): throw LocksmithError(.badMessage, why)
        case .notHeld: return 0
        case .held(let key, let id):
            let k = try copyOut(key)
            guard let i = strdup(id) else {
                free(k)
                throw LocksmithError(.system(ENOMEM), "out of memory")
            }
            if let ret_key { ret_key.pointee = k } else { free(k) }
            if let ret_id { ret_id.pointee = i } else { free(i) }
            return 1
        }
    }
}
