// locksmith_semaphore: the semaphore document in memory.
// Ordered as include/locksmith.h.
import CLocksmith
import Glibc
import LocksmithCore
import LocksmithEtcd
import LocksmithSystem

typealias SemaphoreHandle = Handle<SemaphoreDocument>

@c @implementation
public func locksmith_semaphore_new(_ ret: UnsafeMutablePointer<OpaquePointer?>!) -> Int32 {
    call {
        try out(ret, "ret").pointee = SemaphoreHandle.make(SemaphoreDocument())
        return 0
    }
}

@c @implementation
public func locksmith_semaphore_parse(_ json: UnsafePointer<CChar>!, _ ret: UnsafeMutablePointer<OpaquePointer?>!) -> Int32 {
    call {
        let r = try out(ret, "ret")
        let document = try SemaphoreDocument(parsingUTF8: bytes(json, "json"))
        r.pointee = SemaphoreHandle.make(document)
        return 0
    }
}

@c @implementation
public func locksmith_semaphore_to_json(_ s: OpaquePointer!, _ ret_json: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>!) -> Int32 {
    call {
        let handle = try SemaphoreHandle.from(s, "s")
        try out(ret_json, "ret_json").pointee = try copyOut(handle.value.json)
        return 0
    }
}

@c @implementation
public func locksmith_semaphore_lock(_ s: OpaquePointer!, _ holder: UnsafePointer<CChar>!) -> Int32 {
    call {
        try SemaphoreHandle.from(s, "s").value.lock(text(holder, "holder"))
        return 0
    }
}

@c @implementation
public func locksmith_semaphore_unlock(_ s: OpaquePointer!, _ holder: UnsafePointer<CChar>!) -> Int32 {
    call {
        try SemaphoreHandle.from(s, "s").value.unlock(text(holder, "holder"))
        return 0
    }
}

@c @implementation
public func locksmith_semaphore_set_max(_ s: OpaquePointer!, _ max: Int32, _ ret_old_max: UnsafeMutablePointer<Int32>!) -> Int32 {
    call {
        let old = try SemaphoreHandle.from(s, "s").value.setMax(Int(max))
        ret_old_max?.pointee = Int32(old)
        return 0
    }
}

/// A count of the document, through `ret` (the _get_ functions).
private func getCount(_ s: OpaquePointer?, _ ret: UnsafeMutablePointer<Int32>?, _ count: (SemaphoreDocument) -> Int) -> Int32 {
    call {
        let value = count(try SemaphoreHandle.from(s, "s").value)
        try out(ret, "ret").pointee = Int32(value)
        return 0
    }
}

@c @implementation
public func locksmith_semaphore_get_available(_ s: OpaquePointer!, _ ret: UnsafeMutablePointer<Int32>!) -> Int32 {
    getCount(s, ret) { $0.available }
}

@c @implementation
public func locksmith_semaphore_get_max(_ s: OpaquePointer!, _ ret: UnsafeMutablePointer<Int32>!) -> Int32 {
    getCount(s, ret) { $0.max }
}

@c @implementation
public func locksmith_semaphore_holder_count(_ s: OpaquePointer!) -> Int32 {
    SemaphoreHandle.count(s, "s") { $0.holders }
}

@c @implementation
public func locksmith_semaphore_holder(_ s: OpaquePointer!, _ i: Int32) -> UnsafePointer<CChar>! {
    SemaphoreHandle.lendItem(s, "s", i, "holder", { $0.holders }) { $0 }
}

@c @implementation
public func locksmith_semaphore_is_holder(_ s: OpaquePointer!, _ holder: UnsafePointer<CChar>!) -> Int32 {
    call {
        let handle = try SemaphoreHandle.from(s, "s")
        return handle.value.holds(try text(holder, "holder")) ? 1 : 0
    }
}

@c @implementation
public func locksmith_semaphore_free(_ s: OpaquePointer!) -> OpaquePointer! {
    SemaphoreHandle.release(s)
}
