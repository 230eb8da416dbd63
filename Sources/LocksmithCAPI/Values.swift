// Values without an object: Go durations, the backoff, JSON strings, times for people.
// Ordered as include/locksmith.h.
import CLocksmith
import Glibc
import LocksmithCore
import LocksmithEtcd
import LocksmithSystem

@c @implementation
public func locksmith_duration_parse(_ text_: UnsafePointer<CChar>!, _ ret_nanoseconds: UnsafeMutablePointer<Int64>!) -> Int32 {
    call {
        let r = try out(ret_nanoseconds, "ret_nanoseconds")
        r.pointee = try GoDuration.parse(text(text_, "text"))
        return 0
    }
}

@c @implementation
public func locksmith_duration_format(_ nanoseconds: Int64, _ ret: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>!) -> Int32 {
    call {
        try out(ret, "ret").pointee = try copyOut(GoDuration.format(nanoseconds))
        return 0
    }
}

@c @implementation
public func locksmith_backoff_delay(_ attempt: Int32, _ ret_seconds: UnsafeMutablePointer<Int64>!) -> Int32 {
    call {
        let r = try out(ret_seconds, "ret_seconds")
        guard attempt >= 0 else { throw invalid("attempt is negative: \(attempt)") }
        r.pointee = Backoff.delay(attempt: Int(attempt))
        return 0
    }
}

@c @implementation
public func locksmith_json_quote(_ text_: UnsafePointer<CChar>!, _ ret: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>!) -> Int32 {
    call {
        let r = try out(ret, "ret")
        r.pointee = try copyOut(JSONText.quoted(utf8: try bytes(text_, "text")))
        return 0
    }
}

@c @implementation
public func locksmith_time_format(_ t: Int64, _ format: UnsafePointer<CChar>!, _ utc: Int32, _ ret: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>!) -> Int32 {
    call {
        let pattern = try format.map { try text($0, "format", limit: 256) } ?? LocalTime.defaultFormat
        let r = try out(ret, "ret")
        r.pointee = try copyOut(LocalTime.format(t, pattern, utc: utc != 0))
        return 0
    }
}
