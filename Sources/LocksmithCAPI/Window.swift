// locksmith_window: a reboot window, read in local time or a named zone.
// Ordered as include/locksmith.h.
import CLocksmith
import Glibc
import LocksmithCore
import LocksmithEtcd
import LocksmithSystem

typealias WindowHandle = Handle<ZonedWindow>

@c @implementation
public func locksmith_window_parse(_ start: UnsafePointer<CChar>!, _ length: UnsafePointer<CChar>!, _ ret: UnsafeMutablePointer<OpaquePointer?>!) -> Int32 {
    call {
        let r = try out(ret, "ret")
        let window = try RebootWindow(start: text(start, "start"), length: text(length, "length"))
        r.pointee = WindowHandle.make(ZonedWindow(window))
        return 0
    }
}

@c @implementation
public func locksmith_window_set_zone(_ w: OpaquePointer!, _ zone: UnsafePointer<CChar>!) -> Int32 {
    call {
        let handle = try WindowHandle.from(w, "w")
        let name = zone.map { String(cString: $0) } ?? ""
        handle.value.zone = name.isEmpty ? nil : try ZoneCalendar(name: name)
        return 0
    }
}

@c @implementation
public func locksmith_window_zone(_ w: OpaquePointer!) -> UnsafePointer<CChar>! {
    guard let handle = WindowHandle.accessed(w, "w"), let zone = handle.value.zone else { return nil }
    return handle.lend("zone") { zone.name }
}

@c @implementation
public func locksmith_window_seconds_to_start(_ w: OpaquePointer!, _ now: Int64, _ ret_seconds: UnsafeMutablePointer<Int64>!) -> Int32 {
    call {
        let window = try WindowHandle.from(w, "w").value
        let r = try out(ret_seconds, "ret_seconds")
        r.pointee = try window.secondsToStart(now: now)
        return 0
    }
}

@c @implementation
public func locksmith_window_next(_ w: OpaquePointer!, _ now: Int64, _ ret_start: UnsafeMutablePointer<Int64>!, _ ret_end: UnsafeMutablePointer<Int64>!) -> Int32 {
    call {
        let window = try WindowHandle.from(w, "w").value
        let r = try out(ret_start, "ret_start")
        let occurrence = try window.occurrence(now: now)
        r.pointee = occurrence.start
        ret_end?.pointee = occurrence.end
        return 0
    }
}

@c @implementation
public func locksmith_window_to_string(_ w: OpaquePointer!, _ ret_start: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>!, _ ret_length: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>!) -> Int32 {
    call {
        let window = try WindowHandle.from(w, "w").value.window
        let start = try copyOut(window.startText)
        guard let length = strdup(window.lengthText) else {
            free(start)
            throw LocksmithError(.system(ENOMEM), "out of memory")
        }
        if let ret_start { ret_start.pointee = start } else { free(start) }
        if let ret_length { ret_length.pointee = length } else { free(length) }
        return 0
    }
}

@c @implementation
public func locksmith_window_format_time(_ w: OpaquePointer!, _ t: Int64, _ ret: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>!) -> Int32 {
    call {
        let window = try WindowHandle.from(w, "w").value
        let r = try out(ret, "ret")
        r.pointee = try copyOut(window.format(t))
        return 0
    }
}

@c @implementation
public func locksmith_window_free(_ w: OpaquePointer!) -> OpaquePointer! {
    WindowHandle.release(w)
}
