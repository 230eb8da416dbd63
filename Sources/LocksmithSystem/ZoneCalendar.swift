// Local time in a named IANA zone, read from the compiled zone file (TZif, RFC 8536) under
// /usr/share/zoneinfo, so that a window can be placed in a zone other than the process's own
// without touching TZ. The answers are SystemCalendar's for the same zone (for the fields a
// window uses: hours 0...23, minutes 0...59), including its rules for wall times that exist twice
// or not at all.
import LocksmithCore

public struct ZoneCalendar: LocalCalendar, Sendable {
    /// The zone's name as given ("Europe/Berlin").
    public let name: String

    /// The compiled zone files' directory.
    public static let directory = "/usr/share/zoneinfo"

    /// Zone files larger than this are refused (the largest real one is under 4 KiB).
    public static let sizeLimit = 1 << 20

    private let zone: TZif

    /// Reads zone `name` from /usr/share/zoneinfo under `root` ("" and "/" mean the real root).
    /// A name that is not a plain relative zone name is `.invalidArgument`; a missing zone is
    /// `.notFound`; a file that is not a TZif file (or uses leap seconds) is `.badMessage`.
    public init(name: String, root: String = "") throws {
        try ZoneCalendar.checkName(name)
        let file = SystemRoot.resolve(ZoneCalendar.directory + "/" + name, root: root)
        let bytes: [UInt8]
        do {
            bytes = try Syscalls.readFile(file, limit: ZoneCalendar.sizeLimit)
        } catch let error as LocksmithError where error.kind == .notFound {
            throw LocksmithError(.notFound, "time zone \(JSONText.quotedExcerpt(name)): no such zone in \(SystemRoot.resolve(ZoneCalendar.directory, root: root))")
        } catch let error as LocksmithError {
            throw LocksmithError(error.kind, "time zone \(JSONText.quotedExcerpt(name)): \(error.message)")
        }
        self.name = name
        zone = try TZif(bytes, file: file)
    }

    /// The offset from UTC in force at Unix time `t`, whether it is daylight saving time, and
    /// the zone's abbreviation for it ("CEST", "+0530").
    public func utcOffset(at t: Int64) -> (seconds: Int, isDST: Bool, abbreviation: String) {
        let type = zone.localType(at: t).type
        return (type.offset, type.isDST, type.abbreviation)
    }

    public func civil(_ t: Int64) -> CivilTime {
        let local = Calendar.add(t, zone.localType(at: t).type.offset)
        let days = Calendar.floorDivide(local, 86_400)
        let seconds = Int(Calendar.modulo(local, 86_400))
        let date = Calendar.date(days: Int(days))
        return CivilTime(year: date.year, month: date.month, day: date.day, hour: seconds / 3600,
                         minute: seconds / 60 % 60, second: seconds % 60, weekday: Int(Calendar.modulo(days + 4, 7)))
    }

    /// The fields are normalized as timegm(3) does (day 0 is the month's eve, month 13 is next
    /// January; hours and minutes too), then, as SystemCalendar: a wall time that exists twice
    /// is its first instant; one skipped by a jump forward is read with the offset before the
    /// jump (02:30 becomes 03:30). Times beyond Int64 saturate.
    public func unixTime(year: Int, month: Int, day: Int, hour: Int, minute: Int) -> Int64 {
        let wall = Calendar.wallSeconds(year: year, month: month, day: day, hour: hour, minute: minute)
        // Offsets stay within ±26 h, so every instant that can show `wall` lies in this span.
        let margin: Int64 = 27 * 3600
        var (type, next) = zone.localType(at: wall - margin)
        while true {
            // This segment, up to `end`, shows the wall times before `end + offset`; the ones
            // before it already showed every wall time up to its start.
            guard let end = next, end <= wall + margin else {
                return wall - Int64(type.offset)
            }
            if wall < Calendar.add(end, type.offset) {
                return wall - Int64(type.offset)
            }
            let following = zone.localType(at: end)
            if wall < Calendar.add(end, following.type.offset) {
                return wall - Int64(type.offset)  // skipped by the jump at `end`: the offset before it
            }
            (type, next) = following
        }
    }

    /// Zone names are relative paths of letters, digits and "/_-+", without "." components.
    private static func checkName(_ name: String) throws {
        func bad(_ why: String) -> LocksmithError {
            LocksmithError(.invalidArgument, "time zone \(JSONText.quotedExcerpt(name)): \(why)")
        }
        let bytes = Array(name.utf8)
        if bytes.isEmpty { throw bad("empty name") }
        if bytes.count > 255 { throw bad("name longer than 255 bytes") }
        if bytes.first == UInt8(ascii: "/") { throw bad("not a relative name under \(directory)") }
        if name.contains("..") { throw bad("\"..\" is not allowed") }
        let allowed = bytes.allSatisfy { b in
            (0x30...0x39).contains(b) || (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b)
                || b == UInt8(ascii: "/") || b == UInt8(ascii: "_") || b == UInt8(ascii: "-") || b == UInt8(ascii: "+")
                || b == UInt8(ascii: ".")
        }
        if !allowed { throw bad("only letters, digits and \"/_-+\" are allowed") }
        for component in bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false) {
            if component.isEmpty { throw bad("empty path component") }
            if component.first == UInt8(ascii: ".") { throw bad("a path component starts with \".\"") }
        }
        // "." is only let through above to be named in the better message; nothing else may hold it.
        if bytes.contains(UInt8(ascii: ".")) { throw bad("only letters, digits and \"/_-+\" are allowed") }
    }
}

/// One of a zone's kinds of local time: CET, CEST.
private struct LocalTimeType: Sendable, Equatable {
    var offset: Int  // seconds east of UTC
    var isDST: Bool
    var abbreviation: String
}

/// A parsed TZif file: transitions, their local time types, and the footer's rule for the time
/// after the last transition.
private struct TZif: Sendable {
    var transitions: [Int64] = []
    var transitionTypes: [UInt8] = []
    var types: [LocalTimeType] = []
    var footer: PosixZone?

    /// RFC 8536 says utoff SHOULD lie in this range (-25 h < offset < 26 h).
    static let offsets = -89_999...93_599

    init(_ bytes: [UInt8], file: String) throws {
        var reader = ByteReader(bytes: bytes, file: file)
        let first = try reader.header()
        if first.version == 0 {
            try read(&reader, first, timeSize: 4)
            return
        }
        try reader.skip(first.dataLength(timeSize: 4))
        let second = try reader.header()
        guard second.version == first.version else {
            throw reader.bad("the second header's version differs from the first's")
        }
        try read(&reader, second, timeSize: 8)
        // The footer: a POSIX TZ string between newlines ("" when it says nothing).
        guard try reader.byte() == UInt8(ascii: "\n") else { throw reader.bad("no footer after the data") }
        let text = try reader.line()
        if !text.isEmpty {
            do {
                footer = try PosixZone(text)
            } catch {
                throw reader.bad("footer \(JSONText.quotedExcerpt(text)): \(error.message)")
            }
        }
    }

    private mutating func read(_ reader: inout ByteReader, _ header: ByteReader.Header, timeSize: Int) throws {
        guard header.dataLength(timeSize: timeSize) <= reader.remaining else {
            throw reader.bad("truncated (the header counts more data than the file holds)")
        }
        guard header.typecnt >= 1 else { throw reader.bad("no local time types") }
        guard header.charcnt >= 1 else { throw reader.bad("no time zone abbreviations") }
        guard header.isstdcnt == 0 || header.isstdcnt == header.typecnt,
              header.isutcnt == 0 || header.isutcnt == header.typecnt else {
            throw reader.bad("standard/UT indicator counts do not match the type count")
        }
        guard header.leapcnt == 0 else { throw reader.bad("leap-second zones (\"right/\") are not supported") }

        transitions.reserveCapacity(header.timecnt)
        for _ in 0..<header.timecnt {
            let t = timeSize == 4 ? Int64(try reader.int32()) : try reader.int64()
            if let last = transitions.last, t <= last { throw reader.bad("transition times are not in ascending order") }
            transitions.append(t)
        }
        for _ in 0..<header.timecnt {
            let index = try reader.byte()
            guard Int(index) < header.typecnt else { throw reader.bad("a transition names local time type \(index) of \(header.typecnt)") }
            transitionTypes.append(index)
        }
        var raw: [(offset: Int, isDST: UInt8, index: Int)] = []
        for _ in 0..<header.typecnt {
            raw.append((Int(try reader.int32()), try reader.byte(), Int(try reader.byte())))
        }
        let characters = try reader.take(header.charcnt)
        for (offset, isDST, index) in raw {
            guard TZif.offsets.contains(offset) else { throw reader.bad("UTC offset \(offset) s is out of range") }
            guard isDST <= 1 else { throw reader.bad("a DST indicator is neither 0 nor 1") }
            guard index < characters.count, let end = characters[(characters.startIndex + index)...].firstIndex(of: 0) else {
                throw reader.bad("an abbreviation index lies outside the abbreviations")
            }
            let abbreviation = String(decoding: characters[(characters.startIndex + index)..<end], as: UTF8.self)
            types.append(LocalTimeType(offset: offset, isDST: isDST == 1, abbreviation: abbreviation))
        }
        // The standard/UT indicators serve only TZ strings without rules (posixrules): unused.
        try reader.skip(header.isstdcnt + header.isutcnt)
    }

    /// The local time type at `t` and when it next changes (nil: never).
    func localType(at t: Int64) -> (type: LocalTimeType, next: Int64?) {
        guard let last = transitions.last else {
            if let footer { return footer.localType(at: t) }
            return (types[0], nil)
        }
        if t < transitions[0] { return (types[0], transitions[0]) }
        if t >= last {
            if let footer { return footer.localType(at: t) }
            return (types[Int(transitionTypes[transitionTypes.count - 1])], nil)
        }
        // The last transition at or before t: transitions[low] <= t < transitions[high].
        var low = 0, high = transitions.count - 1
        while high - low > 1 {
            let middle = low + (high - low) / 2
            if transitions[middle] <= t { low = middle } else { high = middle }
        }
        return (types[Int(transitionTypes[low])], transitions[high])
    }
}

/// Bounds-checked big-endian reading of a TZif file; running off the end is an error naming it.
private struct ByteReader {
    let bytes: [UInt8]
    let file: String
    var position = 0

    var remaining: Int { bytes.count - position }

    func bad(_ why: String) -> LocksmithError {
        LocksmithError(.badMessage, "\(file): not a valid TZif file: \(why)")
    }

    mutating func take(_ count: Int) throws -> ArraySlice<UInt8> {
        guard count >= 0, count <= remaining else { throw bad("truncated") }
        defer { position += count }
        return bytes[position..<(position + count)]
    }

    mutating func skip(_ count: Int) throws { _ = try take(count) }

    mutating func byte() throws -> UInt8 { try take(1).first ?? 0 }

    mutating func uint32() throws -> UInt32 {
        try take(4).reduce(0) { $0 << 8 | UInt32($1) }
    }

    mutating func int32() throws -> Int32 { Int32(bitPattern: try uint32()) }

    mutating func int64() throws -> Int64 {
        Int64(bitPattern: try take(8).reduce(0) { $0 << 8 | UInt64($1) })
    }

    /// The text up to the next newline, which is consumed too.
    mutating func line() throws -> String {
        guard let end = bytes[position...].firstIndex(of: UInt8(ascii: "\n")) else { throw bad("the footer does not end in a newline") }
        let text = bytes[position..<end]
        guard text.allSatisfy({ (0x20...0x7E).contains($0) }) else { throw bad("the footer is not printable ASCII") }
        position = end + 1
        return String(decoding: text, as: UTF8.self)
    }

    struct Header {
        var version: UInt8
        var isutcnt = 0, isstdcnt = 0, leapcnt = 0, timecnt = 0, typecnt = 0, charcnt = 0

        /// The size of the data block after this header (counts are at most 2^32 - 1: no overflow).
        func dataLength(timeSize: Int) -> Int {
            timecnt * timeSize + timecnt + typecnt * 6 + charcnt + leapcnt * (timeSize + 4) + isstdcnt + isutcnt
        }
    }

    /// The 44-byte header: "TZif", version, 15 unused bytes, six counts.
    mutating func header() throws -> Header {
        guard remaining >= 44 else { throw bad(position == 0 ? "shorter than a TZif header" : "truncated") }
        guard Array(try take(4)) == Array("TZif".utf8) else { throw bad("no TZif magic") }
        let version = try byte()
        guard version == 0 || (UInt8(ascii: "2")...UInt8(ascii: "4")).contains(version) else {
            throw bad("unknown version " + ((0x21...0x7E).contains(version) ? "\"\(Character(Unicode.Scalar(version)))\"" : "byte \(version)"))
        }
        try skip(15)
        var header = Header(version: version)
        header.isutcnt = Int(try uint32())
        header.isstdcnt = Int(try uint32())
        header.leapcnt = Int(try uint32())
        header.timecnt = Int(try uint32())
        header.typecnt = Int(try uint32())
        header.charcnt = Int(try uint32())
        return header
    }
}

/// A POSIX TZ string as TZif footers hold it (RFC 8536 section 3.3): "CET-1CEST,M3.5.0,M10.5.0/3",
/// "<+0330>-3:30", with rule times of -167 to 167 hours.
private struct PosixZone: Sendable {
    struct Failure: Error { var message: String }

    /// When in a year a change happens.
    enum Day: Sendable {
        case julian(Int)  // Jn: 1...365, February 29 never counted
        case ordinal(Int)  // n: 0...365, February 29 counted
        case weekday(month: Int, week: Int, day: Int)  // Mm.w.d: week 5 is the last
    }

    struct Rule: Sendable {
        var day: Day
        var time: Int  // seconds after local midnight, -167 h ... 167 h
    }

    struct Daylight: Sendable {
        var type: LocalTimeType
        var start: Rule  // in standard time
        var end: Rule  // in daylight time
    }

    var standard: LocalTimeType
    var daylight: Daylight?

    init(_ text: String) throws(Failure) {
        var parser = Parser(bytes: Array(text.utf8))
        let standardName = try parser.name()
        // POSIX offsets stop at 24:59:59 (one hour more for the default DST): within TZif.offsets.
        let standardOffset = -(try parser.time(maxHours: 24))
        standard = LocalTimeType(offset: standardOffset, isDST: false, abbreviation: standardName)
        guard !parser.atEnd else { return }
        let daylightName = try parser.name()
        var daylightOffset = standardOffset + 3600
        if !parser.atEnd, parser.peek != UInt8(ascii: ",") {
            daylightOffset = -(try parser.time(maxHours: 24))
        }
        guard parser.eat(",") else { throw Failure(message: "daylight saving time without rules") }
        let start = try parser.rule()
        guard parser.eat(",") else { throw Failure(message: "expected \",\" and the end rule") }
        let end = try parser.rule()
        guard parser.atEnd else { throw Failure(message: "unexpected text after the rules") }
        daylight = Daylight(type: LocalTimeType(offset: daylightOffset, isDST: true, abbreviation: daylightName),
                            start: start, end: end)
    }

    /// The local time type at `t` and when the rules next change it. Beyond ±2^58 s (some 9
    /// billion years) standard time is assumed, so that no arithmetic can overflow.
    func localType(at t: Int64) -> (type: LocalTimeType, next: Int64?) {
        guard let daylight, abs(t) <= 1 << 58 else { return (standard, nil) }
        // A year's changes lie within a week and a day of it (rule times reach ±167 h), so the
        // changes of the years around t's always include one at or before t and one after it.
        let year = Calendar.date(days: Int(Calendar.floorDivide(t, 86_400))).year
        var latest: (at: Int64, isDST: Bool)?
        var next: Int64?
        for y in (year - 2)...(year + 2) {
            let start = change(daylight.start, year: y, offset: standard.offset)
            let end = change(daylight.end, year: y, offset: daylight.type.offset)
            if start == end { continue }  // no daylight saving time that year
            for (at, isDST) in [(start, true), (end, false)] {
                if at > t {
                    next = min(next ?? at, at)
                } else if let l = latest, (l.at, l.isDST ? 1 : 0) >= (at, isDST ? 1 : 0) {
                    continue
                } else {
                    // At equal times a start wins over an end: DST all year ends one year's
                    // period exactly when the next begins (RFC 8536 section 3.3.1).
                    latest = (at, isDST)
                }
            }
        }
        return (latest?.isDST == true ? daylight.type : standard, next)
    }

    /// The Unix time of `rule` in `year`, its time read in local time of UTC offset `offset`.
    private func change(_ rule: Rule, year: Int, offset: Int) -> Int64 {
        let day: Int
        switch rule.day {
        case .julian(let n):
            day = Calendar.days(year: year, month: 1, day: n) + (n >= 60 && Calendar.isLeap(year) ? 1 : 0)
        case .ordinal(let n):
            day = Calendar.days(year: year, month: 1, day: n + 1)
        case .weekday(let month, let week, let weekday):
            let first = Calendar.days(year: year, month: month, day: 1)
            let firstWeekday = Int(Calendar.modulo(Int64(first) + 4, 7))
            var d = first + (weekday - firstWeekday + 7) % 7 + (week - 1) * 7
            let length = Calendar.days(year: month == 12 ? year + 1 : year, month: month % 12 + 1, day: 1) - first
            while d - first >= length { d -= 7 }
            day = d
        }
        return Int64(day) * 86_400 + Int64(rule.time - offset)
    }

    private struct Parser {
        let bytes: [UInt8]
        var position = 0

        var atEnd: Bool { position == bytes.count }
        var peek: UInt8? { atEnd ? nil : bytes[position] }

        mutating func eat(_ c: Unicode.Scalar) -> Bool {
            guard peek == UInt8(ascii: c) else { return false }
            position += 1
            return true
        }

        /// "CET" (letters) or "<+0330>" (letters, digits, "+", "-"); at least three characters.
        mutating func name() throws(Failure) -> String {
            let quoted = eat("<")
            let start = position
            while let c = peek, Parser.isLetter(c) || (quoted && (Parser.isDigit(c) || c == UInt8(ascii: "+") || c == UInt8(ascii: "-"))) {
                position += 1
            }
            let name = String(decoding: bytes[start..<position], as: UTF8.self)
            if quoted, !eat(">") { throw Failure(message: "unterminated or bad <name>") }
            guard name.utf8.count >= 3 else { throw Failure(message: "a zone name needs at least three characters") }
            return name
        }

        /// [+-]hh[:mm[:ss]] in seconds, |hh| <= maxHours.
        mutating func time(maxHours: Int) throws(Failure) -> Int {
            var sign = 1
            if eat("-") { sign = -1 } else { _ = eat("+") }
            let hours = try number(digits: 3, max: maxHours, what: "hours")
            var seconds = hours * 3600
            if eat(":") {
                seconds += try number(digits: 2, max: 59, what: "minutes") * 60
                if eat(":") { seconds += try number(digits: 2, max: 59, what: "seconds") }
            }
            return sign * seconds
        }

        /// Jn, n or Mm.w.d, then an optional /time (default 02:00).
        mutating func rule() throws(Failure) -> Rule {
            let day: Day
            if eat("J") {
                let n = try number(digits: 3, max: 365, what: "Julian day")
                guard n >= 1 else { throw Failure(message: "Julian day 0 (J counts from 1)") }
                day = .julian(n)
            } else if eat("M") {
                let month = try number(digits: 2, max: 12, what: "month")
                guard month >= 1, eat(".") else { throw Failure(message: "expected Mm.w.d") }
                let week = try number(digits: 1, max: 5, what: "week")
                guard week >= 1, eat(".") else { throw Failure(message: "expected Mm.w.d") }
                day = .weekday(month: month, week: week, day: try number(digits: 1, max: 6, what: "weekday"))
            } else {
                day = .ordinal(try number(digits: 3, max: 365, what: "day"))
            }
            let time = eat("/") ? try self.time(maxHours: 167) : 7200
            return Rule(day: day, time: time)
        }

        private mutating func number(digits: Int, max: Int, what: String) throws(Failure) -> Int {
            let start = position
            var value = 0
            while let c = peek, Parser.isDigit(c), position - start < digits {
                value = value * 10 + Int(c - UInt8(ascii: "0"))
                position += 1
            }
            guard position > start, value <= max, !(peek.map(Parser.isDigit) ?? false) else {
                throw Failure(message: "bad \(what) (0 to \(max))")
            }
            return value
        }

        private static func isLetter(_ c: UInt8) -> Bool { (0x41...0x5A).contains(c) || (0x61...0x7A).contains(c) }
        private static func isDigit(_ c: UInt8) -> Bool { (0x30...0x39).contains(c) }
    }
}

/// Proleptic Gregorian calendar arithmetic on days since 1970-01-01 (H. Hinnant's algorithms).
private enum Calendar {
    static func floorDivide(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    /// `a` modulo `b` (b > 0), in 0..<b.
    static func modulo(_ a: Int64, _ b: Int64) -> Int64 {
        let r = a % b
        return r < 0 ? r + b : r
    }

    /// `t + offset`, saturating at the ends of Int64.
    static func add(_ t: Int64, _ offset: Int) -> Int64 {
        let (sum, overflow) = t.addingReportingOverflow(Int64(offset))
        return overflow ? (offset < 0 ? .min : .max) : sum
    }

    static func isLeap(_ year: Int) -> Bool { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) }

    /// Days since 1970-01-01 of `day` of `month` (1...12) of `year`; `day` may run outside
    /// the month. For |year| up to 2^40 and days within ±2^50.
    static func days(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The date of day `days` since 1970-01-01.
    static func date(days: Int) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, dayOfYear - (153 * mp + 2) / 5 + 1)
    }

    /// The fields read as a UTC time, normalized as timegm(3) normalizes them, clamped so that
    /// later adding of ±27 h offsets cannot overflow.
    static func wallSeconds(year: Int, month: Int, day: Int, hour: Int, minute: Int) -> Int64 {
        let limit = Int128(Int64.max - 4 * 86_400)
        let months = Int128(month) - 1
        let y = Int128(year) + (months >= 0 ? months / 12 : (months - 11) / 12)
        // Beyond 2^40 years the seconds no longer fit in Int64 whatever the other fields say.
        guard abs(y) <= 1 << 40 else { return y < 0 ? -Int64(limit) : Int64(limit) }
        let m = Int(months - (y - Int128(year)) * 12) + 1
        let days = Int128(Calendar.days(year: Int(y), month: m, day: 1)) + Int128(day) - 1
        let seconds = days * 86_400 + Int128(hour) * 3600 + Int128(minute) * 60
        return Int64(max(-limit, min(limit, seconds)))
    }
}
