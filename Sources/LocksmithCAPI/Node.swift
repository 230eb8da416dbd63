// This node and its groups: the system root, the machine id, group keys and FleetLock group names.
// Ordered as include/locksmith.h.
import CLocksmith
import Glibc
import LocksmithCore
import LocksmithEtcd
import LocksmithSystem

@c @implementation
public func locksmith_root(_ ret: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>!) -> Int32 {
    call {
        try out(ret, "ret").pointee = try copyOut(SystemRoot.current())
        return 0
    }
}

@c @implementation
public func locksmith_root_path(_ root: UnsafePointer<CChar>!, _ path: UnsafePointer<CChar>!, _ ret: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>!) -> Int32 {
    call {
        let directory = try rootArgument(root)
        let file = try text(path, "path", limit: 4096)
        guard file.hasPrefix("/") else { throw invalid("path \(JSONText.quoted(file)) is not an absolute path") }
        try out(ret, "ret").pointee = try copyOut(SystemRoot.resolve(file, root: directory))
        return 0
    }
}

@c @implementation
public func locksmith_machine_id(_ ret_id: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>!) -> Int32 {
    call {
        let r = try out(ret_id, "ret_id")
        r.pointee = try copyOut(MachineID.read())
        return 0
    }
}

@c @implementation
public func locksmith_machine_id_at(_ root: UnsafePointer<CChar>!, _ ret_id: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>!) -> Int32 {
    call {
        let r = try out(ret_id, "ret_id")
        r.pointee = try copyOut(MachineID.read(root: rootArgument(root)))
        return 0
    }
}

@c @implementation
public func locksmith_group_key(_ group: UnsafePointer<CChar>!, _ ret_key: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>!) -> Int32 {
    call {
        let r = try out(ret_key, "ret_key")
        let name = try group.map { try text($0, "group", limit: GroupKey.maxGroupBytes) }
        r.pointee = try copyOut(GroupKey.key(group: name))
        return 0
    }
}

@c @implementation
public func locksmith_key_group(_ key: UnsafePointer<CChar>!, _ ret_group: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>!) -> Int32 {
    call {
        let r = try out(ret_group, "ret_group")
        let name = try text(key, "key", limit: 4096)
        guard let group = GroupKey.group(ofKey: name), !name.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7f }) else {
            throw invalid("key \(JSONText.quotedExcerpt(name)) is not a semaphore key of the reboot lock")
        }
        r.pointee = try copyOut(group)
        return 0
    }
}

@c @implementation
public func locksmith_fleetlock_group_check(_ group: UnsafePointer<CChar>!) -> Int32 {
    call {
        try FleetLockServer.checkGroup(text(group, "group", limit: 4096))
        return 0
    }
}
