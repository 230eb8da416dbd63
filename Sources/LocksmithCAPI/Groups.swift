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

@c @implementation
public func locksmith_groups_count(_ g: OpaquePointer!) -> Int32 {
    GroupsHandle.count(g, "g") { $0.entries }
}

@c @implementation
public func locksmith_groups_name(_ g: OpaquePointer!, _ i: Int32) -> UnsafePointer<CChar>! {
    GroupsHandle.lendItem(g, "g", i, "name", { $0.entries }) { $0.name }
}

@c @implementation
public func locksmith_groups_key(_ g: OpaquePointer!, _ i: Int32) -> UnsafePointer<CChar>! {
    GroupsHandle.lendItem(g, "g", i, "key", { $0.entries }) { $0.key }
}

@c @implementation
public func locksmith_groups_semaphore(_ g: OpaquePointer!, _ i: Int32) -> OpaquePointer! {
    GroupsHandle.item(g, "g", i) { $0.entries }?.1.semaphore
}

@c @implementation
public func locksmith_groups_error(_ g: OpaquePointer!, _ i: Int32) -> UnsafePointer<CChar>! {
    GroupsHandle.lendItem(g, "g", i, "error", { $0.entries }) { $0.error }
}

@c @implementation
public func locksmith_groups_free(_ g: OpaquePointer!) -> OpaquePointer! {
    GroupsHandle.release(g)
}
