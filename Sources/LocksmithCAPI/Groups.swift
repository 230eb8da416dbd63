// locksmith_groups: every group with its semaphore, as locksmith_client_groups lists them.
// Ordered as include/locksmith.h.
import CLocksmith
import Glibc
import LocksmithCore
import LocksmithEtcd
import LocksmithSystem

/// locksmith_groups: the listing, with one semaphore handle per valid document, owned here.
final class GroupsState {
    struct Entry {
        var name: String
        var key: String
        var semaphore: OpaquePointer?
        var error: String?
    }
    let entries: [Entry]

    init(_ listing: [(group: String, key: String, document: Result<SemaphoreDocument, LocksmithError>)]) {
        entries = listing.map { item in
            let key = item.key
            switch item.document {
            case .success(let document): return Entry(name: item.group, key: key, semaphore: SemaphoreHandle.make(document), error: nil)
            case .failure(let error): return Entry(name: item.group, key: key, semaphore: nil, error: error.message)
            }
        }
    }

    deinit {
        for entry in entries { _ = SemaphoreHandle.release(entry.semaphore) }
    }
}

typealias GroupsHandle = Handle<GroupsState>

/// Entry `i` of a groups listing, or nil (NULL handle, or out of range).
private func groupEntry(_ g: OpaquePointer?, _ i: Int32) -> (GroupsHandle, GroupsState.Entry)? {
    guard let handle = GroupsHandle.accessed(g, "g"), inRange(i, handle.value.entries.count) else { return nil }
    return (handle, handle.value.entries[Int(i)])
}

@c @implementation
public func locksmith_groups_count(_ g: OpaquePointer!) -> Int32 {
    call { Int32(clamping: try GroupsHandle.from(g, "g").value.entries.count) }
}

@c @implementation
public func locksmith_groups_name(_ g: OpaquePointer!, _ i: Int32) -> UnsafePointer<CChar>! {
    guard let (handle, entry) = groupEntry(g, i) else { return nil }
    return handle.lend("name \(i)") { entry.name }
}

@c @implementation
public func locksmith_groups_key(_ g: OpaquePointer!, _ i: Int32) -> UnsafePointer<CChar>! {
    guard let (handle, entry) = groupEntry(g, i) else { return nil }
    return handle.lend("key \(i)") { entry.key }
}

@c @implementation
public func locksmith_groups_semaphore(_ g: OpaquePointer!, _ i: Int32) -> OpaquePointer! {
    groupEntry(g, i)?.1.semaphore
}

@c @implementation
public func locksmith_groups_error(_ g: OpaquePointer!, _ i: Int32) -> UnsafePointer<CChar>! {
    guard let (handle, entry) = groupEntry(g, i), let error = entry.error else { return nil }
    return handle.lend("error \(i)") { error }
}

@c @implementation
public func locksmith_groups_free(_ g: OpaquePointer!) -> OpaquePointer! {
    GroupsHandle.release(g)
}
