import Glibc
import Testing
@testable import LocksmithCore
@testable import LocksmithSystem

/// The zones ZoneCalendar is checked in against the C library: both hemispheres, negative DST
/// (Dublin), a 30-minute DST (Lord Howe), a half-hour zone without DST (Kolkata), a date-line
/// jump (Apia, December 2011), an abolished DST (Sao Paulo), Ramadan changes (Casablanca).
let zoneCalendarZones = ["America/New_York", "Europe/Berlin", "Europe/Dublin", "Australia/Lord_Howe", "Asia/Kolkata",
                         "Pacific/Apia", "America/Sao_Paulo", "Africa/Casablanca", "UTC"]

/// Runs `body` with the process's TZ set to `zone`, then restores TZ as it was.
func withProcessZone<T>(_ zone: String, _ body: (SystemCalendar) throws -> T) rethrows -> T {
    let saved = getenv("TZ").map { String(cString: $0) }
    setenv("TZ", zone, 1)
    defer {
        if let saved { setenv("TZ", saved, 1) } else { unsetenv("TZ") }
        tzset()
    }
    return try body(SystemCalendar())
}

/// Compares `count` samples, recording the first few differences as issues; returns how many differed.
@discardableResult
func compareSamples<T: Equatable>(_ what: String, _ count: Int, _ sample: (Int) -> (String, T, T)) -> Int {
    var differences = 0
    for i in 0..<count {
        let (label, mine, theirs) = sample(i)
        if mine != theirs {
            differences += 1
            if differences <= 5 { Issue.record("\(what) \(label): ZoneCalendar \(mine), C library \(theirs)") }
        }
    }
    return differences
}

/// `bytes` as the file `relative` under `root` (directories made as needed).
func writeBinary(_ root: ScratchRoot, _ relative: String, _ bytes: [UInt8]) {
    let full = root.path + relative
    var dir = ""
    for part in full.split(separator: "/").dropLast() {
        dir += "/" + part
        mkdir(dir, 0o755)
    }
    let f = fopen(full, "w")!
    _ = bytes.withUnsafeBufferPointer { fwrite($0.baseAddress, 1, $0.count, f) }
    fclose(f)
}

/// A TZif file: a minimal v1 block, then version `version`'s 64-bit block and footer.
func tzifFile(version: UInt8 = UInt8(ascii: "2"), transitions: [(at: Int64, type: UInt8)] = [],
              types: [(offset: Int32, isDST: Bool, abbreviation: String)], footer: String?) -> [UInt8] {
    func be<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.bigEndian) { Array($0) } }
    func header(_ version: UInt8, timecnt: Int, typecnt: Int, charcnt: Int) -> [UInt8] {
        Array("TZif".utf8) + [version] + [UInt8](repeating: 0, count: 15)
            + [0, 0, 0, timecnt, typecnt, charcnt].flatMap { be(UInt32($0)) }
    }
    var characters: [UInt8] = []
    var indexes: [UInt8] = []
    for type in types {
        indexes.append(UInt8(characters.count))
        characters += Array(type.abbreviation.utf8) + [0]
    }
    func data(timeSize: Int) -> [UInt8] {
        transitions.flatMap { timeSize == 4 ? be(Int32(truncatingIfNeeded: $0.at)) : be($0.at) } + transitions.map(\.type)
            + zip(types, indexes).flatMap { be($0.0.offset) + [$0.0.isDST ? 1 : 0, $0.1] } + characters
    }
    if version == 0 {
        return header(0, timecnt: transitions.count, typecnt: types.count, charcnt: characters.count) + data(timeSize: 4)
    }
    return header(version, timecnt: 0, typecnt: 1, charcnt: 1) + [0, 0, 0, 0, 0, 0, 0]
        + header(version, timecnt: transitions.count, typecnt: types.count, charcnt: characters.count) + data(timeSize: 8)
        + (footer.map { Array("\n\($0)\n".utf8) } ?? [])
}

extension WindowTests {
    /// ZoneCalendar against the C library with TZ set to the same zone. Nested in WindowTests
    /// because both set the process-wide TZ: Swift Testing serializes only within one suite tree.
    @Suite struct ZoneCalendarAgreementTests {
        static let start: Int64 = 946_684_800  // 2000-01-01 00:00 UTC
        static let end: Int64 = 2_208_988_800  // 2040-01-01 00:00 UTC

        /// Every hour and half hour from 2000 to 2040: the transition table and, after it, the footer.
        @Test(arguments: zoneCalendarZones)
        func civilAgrees(_ zone: String) throws {
            let mine = try ZoneCalendar(name: zone)
            #expect(mine.name == zone)
            withProcessZone(zone) { system in
                let hours = Int((Self.end - Self.start) / 3600)
                compareSamples("\(zone) civil", 2 * hours) { i in
                    let t = Self.start + Int64(i / 2) * 3600 + Int64(i % 2) * 1800
                    return ("at \(t)", mine.civil(t), system.civil(t))
                }
            }
        }

        /// Every day of 2016 to 2026 at the hours DST changes happen around, gaps and repeats
        /// included (the last DST years of Sao Paulo and Apia, Casablanca's moving Ramadan
        /// changes, and the footer's rules after each table). Each SystemCalendar answer costs
        /// glibc's mktime a long search, so the range is kept to these years.
        @Test(arguments: zoneCalendarZones)
        func unixTimeAgrees(_ zone: String) throws {
            let mine = try ZoneCalendar(name: zone)
            try withProcessZone(zone) { system in
                let samples = try everyDay(2016...2026)
                let times = [(0, 0), (1, 30), (2, 0), (2, 30), (3, 0), (23, 59)]
                compareSamples("\(zone) unixTime", samples.count * times.count) { i in
                    let (y, m, d) = samples[i / times.count]
                    let (h, min) = times[i % times.count]
                    return ("\(y)-\(m)-\(d) \(h):\(min)", mine.unixTime(year: y, month: m, day: d, hour: h, minute: min),
                            system.unixTime(year: y, month: m, day: d, hour: h, minute: min))
                }
            }
        }

        /// Out-of-range fields are normalized as timegm(3) does, in every zone.
        @Test(arguments: zoneCalendarZones)
        func outOfRangeFieldsAgree(_ zone: String) throws {
            let mine = try ZoneCalendar(name: zone)
            let fields = [(2021, 3, 0), (2021, 2, 29), (2020, 2, 30), (2021, 1, 32), (2021, 13, 1), (2021, 0, 1), (2021, -11, 15),
                          (2021, 25, -40), (2021, 3, 400), (2021, 1, -365), (2024, 2, 29), (2022, 10, 31 + 30)]
            withProcessZone(zone) { system in
                for (y, m, d) in fields {
                    for (h, min) in [(0, 0), (1, 30), (2, 30), (23, 59)] {
                        #expect(mine.unixTime(year: y, month: m, day: d, hour: h, minute: min)
                                == system.unixTime(year: y, month: m, day: d, hour: h, minute: min), "\(zone) \(y)-\(m)-\(d) \(h):\(min)")
                    }
                }
            }
        }

        /// The footer parser against the C library's own reading of the same TZ string.
        @Test(arguments: [
            "CET-1CEST,M3.5.0,M10.5.0/3", "EST5EDT,M3.2.0,M11.1.0", "<+0330>-3:30", "IST-1GMT0,M10.5.0,M3.5.0/1", "<-03>3",
            "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", "EST5EDT,J60/2,J300/2", "EST5EDT,59/2,299/2",
            "<-02>2<-01>,M3.5.0/-1,M10.5.0/0", "<+00>0<+02>-2,M3.5.0/1,M10.5.0/3", "AAA3BBB,M3.2.0/167,M11.1.0/-167",
            "<-0930>9:30", "<+1345>-13:45<+1445>,M9.5.0/2:45,M4.1.0/3:45", "<+14>-14", "<-12>12", "NST3:30NDT,M3.2.0,M11.1.0",
            "XXX-5:30:15YYY-6:45:30,M4.1.6/1:2:3,M9.5.1/23:59:59",
        ])
        func footerAgrees(_ tz: String) throws {
            let root = ScratchRoot()
            writeBinary(root, "/usr/share/zoneinfo/Test/Zone", tzifFile(types: [(0, false, "ZZZ")], footer: tz))
            let mine = try ZoneCalendar(name: "Test/Zone", root: root.path)
            withProcessZone(tz) { system in
                let from: Int64 = 1_577_836_800  // 2020-01-01
                let hours = Int((1_893_456_000 - from) / 3600)  // to 2030-01-01
                compareSamples("\(tz) civil", 2 * hours) { i in
                    let t = from + Int64(i / 2) * 3600 + Int64(i % 2) * 1800
                    return ("at \(t)", mine.civil(t), system.civil(t))
                }
                let samples = (try? everyDay(2020...2029)) ?? []
                let times = [(0, 0), (0, 30), (1, 30), (2, 0), (2, 30), (3, 0), (23, 59)]
                compareSamples("\(tz) unixTime", samples.count * times.count) { i in
                    let (y, m, d) = samples[i / times.count]
                    let (h, min) = times[i % times.count]
                    return ("\(y)-\(m)-\(d) \(h):\(min)", mine.unixTime(year: y, month: m, day: d, hour: h, minute: min),
                            system.unixTime(year: y, month: m, day: d, hour: h, minute: min))
                }
            }
        }
    }
}

/// Every date of `years`.
func everyDay(_ years: ClosedRange<Int>) throws -> [(Int, Int, Int)] {
    var out: [(Int, Int, Int)] = []
    for y in years {
        let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
        for (m, days) in [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31].enumerated() {
            for d in 1...days { out.append((y, m + 1, d)) }
        }
    }
    return out
}

@Suite struct ZoneCalendarTests {
    /// Known answers, independent of the C library (Python's zoneinfo agrees).
    @Test func gapsAndRepeats() throws {
        let berlin = try ZoneCalendar(name: "Europe/Berlin")
        #expect(berlin.unixTime(year: 2021, month: 3, day: 28, hour: 2, minute: 30) == 1_616_895_000)  // 03:30 CEST
        #expect(berlin.unixTime(year: 2021, month: 10, day: 31, hour: 2, minute: 30) == 1_635_640_200)  // the CEST one
        let c = berlin.civil(1_616_895_000)
        #expect(c == CivilTime(year: 2021, month: 3, day: 28, hour: 3, minute: 30, second: 0, weekday: 0))
        let newYork = try ZoneCalendar(name: "America/New_York")
        #expect(newYork.unixTime(year: 2021, month: 3, day: 14, hour: 2, minute: 30) == 1_615_707_000)
        #expect(newYork.unixTime(year: 2021, month: 11, day: 7, hour: 1, minute: 30) == 1_636_263_000)
        let lordHowe = try ZoneCalendar(name: "Australia/Lord_Howe")
        #expect(lordHowe.unixTime(year: 2021, month: 10, day: 3, hour: 2, minute: 15) == 1_633_189_500)  // 02:45 +11
        #expect(lordHowe.unixTime(year: 2022, month: 4, day: 3, hour: 1, minute: 45) == 1_648_910_700)  // the +11 one
        let dublin = try ZoneCalendar(name: "Europe/Dublin")
        #expect(dublin.unixTime(year: 2021, month: 3, day: 28, hour: 1, minute: 30) == 1_616_895_000)
        #expect(dublin.unixTime(year: 2021, month: 10, day: 31, hour: 1, minute: 30) == 1_635_640_200)
    }

    @Test func offsets() throws {
        let dublin = try ZoneCalendar(name: "Europe/Dublin")
        // Ireland's winter time is the "daylight saving" one (negative DST), in the footer years too.
        #expect(dublin.utcOffset(at: 2_210_241_600) == (0, true, "GMT"))
        #expect(dublin.utcOffset(at: 2_225_966_400) == (3600, false, "IST"))
        #expect(try ZoneCalendar(name: "Australia/Lord_Howe").utcOffset(at: 2_178_662_400) == (39_600, true, "+11"))
        #expect(try ZoneCalendar(name: "Asia/Kolkata").utcOffset(at: 1_735_689_600) == (19_800, false, "IST"))
        #expect(try ZoneCalendar(name: "UTC").utcOffset(at: 0) == (0, false, "UTC"))
        #expect(try ZoneCalendar(name: "Etc/GMT+5").utcOffset(at: 0) == (-18_000, false, "-05"))
        #expect(try ZoneCalendar(name: "Etc/GMT-14").utcOffset(at: 0) == (50_400, false, "+14"))
        let berlin = try ZoneCalendar(name: "Europe/Berlin")
        #expect(berlin.utcOffset(at: 1_616_893_199) == (3600, false, "CET"))  // 2021-03-28 00:59:59 UTC
        #expect(berlin.utcOffset(at: 1_616_893_200) == (7200, true, "CEST"))
        #expect(berlin.utcOffset(at: 4_102_444_800 + 180 * 86_400) == (7200, true, "CEST"))  // 2100, from the footer
    }

    /// DST all year (RFC 8536 section 3.3.1): the C library falls back to standard time in the
    /// hours between January 1 00:00 UTC and local midnight; the RFC does not.
    @Test func daylightAllYear() throws {
        let root = ScratchRoot()
        writeBinary(root, "/usr/share/zoneinfo/Test/Zone", tzifFile(types: [(-18_000, false, "EST")], footer: "EST5EDT4,0/0,J365/25"))
        let zone = try ZoneCalendar(name: "Test/Zone", root: root.path)
        for t in stride(from: Int64(1_577_836_800), to: 1_893_456_000, by: 3593) {
            #expect(zone.utcOffset(at: t) == (-14_400, true, "EDT"), "at \(t)")
        }
    }

    /// Rules that change near New Year: a year's DST period may still run in the next UTC year.
    /// (The C library reads the rules of t's UTC year only and says EST here until 03:00 UTC.)
    @Test func rulesAcrossNewYear() throws {
        let root = ScratchRoot()
        writeBinary(root, "/usr/share/zoneinfo/Test/Zone", tzifFile(types: [(-18_000, false, "EST")], footer: "EST5EDT,J1/0,J365/23"))
        let zone = try ZoneCalendar(name: "Test/Zone", root: root.path)
        let newYear: Int64 = 1_577_836_800  // 2020-01-01 00:00 UTC
        #expect(zone.utcOffset(at: newYear - 1) == (-14_400, true, "EDT"))
        #expect(zone.utcOffset(at: newYear + 3 * 3600 - 1) == (-14_400, true, "EDT"))  // 2019-12-31 22:59:59 EDT
        #expect(zone.utcOffset(at: newYear + 3 * 3600) == (-18_000, false, "EST"))  // 2019-12-31 22:00 EST
        #expect(zone.utcOffset(at: newYear + 5 * 3600 - 1) == (-18_000, false, "EST"))
        #expect(zone.utcOffset(at: newYear + 5 * 3600) == (-14_400, true, "EDT"))  // 2020-01-01 01:00 EDT
        #expect(zone.civil(newYear) == CivilTime(year: 2019, month: 12, day: 31, hour: 20, minute: 0, second: 0, weekday: 2))
        // 22:30 on Dec 31 exists twice (EDT, then EST); 00:30 on Jan 1 does not exist.
        #expect(zone.unixTime(year: 2019, month: 12, day: 31, hour: 22, minute: 30) == newYear + 2 * 3600 + 1800)
        #expect(zone.unixTime(year: 2020, month: 1, day: 1, hour: 0, minute: 30) == newYear + 5 * 3600 + 1800)
    }

    /// A version 1 file has no footer: after its last transition the last type holds.
    @Test func versionOneKeepsTheLastType() throws {
        let root = ScratchRoot()
        let types: [(offset: Int32, isDST: Bool, abbreviation: String)] = [(3600, false, "AAA"), (7200, true, "BBB"), (-1800, false, "CCC")]
        writeBinary(root, "/usr/share/zoneinfo/Test/Zone",
                    tzifFile(version: 0, transitions: [(-1000, 1), (1_000_000_000, 2)], types: types, footer: nil))
        let zone = try ZoneCalendar(name: "Test/Zone", root: root.path)
        #expect(zone.utcOffset(at: -1001) == (3600, false, "AAA"))  // before the first: type 0
        #expect(zone.utcOffset(at: -1000) == (7200, true, "BBB"))
        #expect(zone.utcOffset(at: 999_999_999) == (7200, true, "BBB"))
        #expect(zone.utcOffset(at: 1_000_000_000) == (-1800, false, "CCC"))
        #expect(zone.utcOffset(at: 4_000_000_000) == (-1800, false, "CCC"))
        #expect(zone.civil(4_000_000_000) == CivilTime(year: 2096, month: 10, day: 2, hour: 6, minute: 36, second: 40, weekday: 2))
        // The jump back at 1e9 (Sun 2001-09-09 03:46:40 local) repeats 01:16:40 to 03:46:40.
        #expect(zone.unixTime(year: 2001, month: 9, day: 9, hour: 2, minute: 0) == 1_000_000_000 - 6400)
        #expect(zone.unixTime(year: 2001, month: 9, day: 9, hour: 4, minute: 0) == 1_000_000_000 + 9800)
    }

    @Test(arguments: [
        ("", "empty"), (String(repeating: "A", count: 256), "longer than 255"), ("/etc/localtime", "relative"),
        ("/Europe/Berlin", "relative"), ("../etc/passwd", "\"..\""), ("Europe/../Berlin", "\"..\""), ("Europe/..", "\"..\""),
        (".hidden", "starts with \".\""), ("Europe/.Berlin", "starts with \".\""), ("./UTC", "starts with \".\""),
        ("Europe/Ber lin", "only letters"), ("Europe/Berlin\n", "only letters"), ("Europe\\Berlin", "only letters"),
        ("Europe/Berlín", "only letters"), ("Europe/Berlin;id", "only letters"), ("Europe/Ber.lin", "only letters"),
        ("Europe/*", "only letters"), ("UTC\0", "only letters"), ("Europe//Berlin", "empty path component"),
        ("Europe/", "empty path component"),
    ])
    func badNames(_ name: String, _ fragment: String) {
        do {
            _ = try ZoneCalendar(name: name)
            Issue.record("accepted \(JSONText.quoted(name))")
        } catch let error as LocksmithError {
            #expect(error.kind == .invalidArgument)
            #expect(error.message.hasPrefix("time zone \""), "\(error.message)")
            #expect(error.message.contains(fragment), "\(error.message)")
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test func missingZones() {
        for name in ["Foo/Bar", String(repeating: "A", count: 255), "Europe/Berlin/x"] {
            do {
                _ = try ZoneCalendar(name: name)
                Issue.record("accepted \(name)")
            } catch let error as LocksmithError {
                #expect(error.message.hasPrefix("time zone \(JSONText.quotedExcerpt(name))"), "\(error.message)")
                if name == "Foo/Bar" {
                    #expect(error.kind == .notFound)
                    #expect(error.message == "time zone \"Foo/Bar\": no such zone in /usr/share/zoneinfo")
                }
            } catch {
                Issue.record("\(error)")
            }
        }
        let root = ScratchRoot()
        #expect(throws: LocksmithError(.notFound, "time zone \"UTC\": no such zone in \(root.path)/usr/share/zoneinfo")) {
            try ZoneCalendar(name: "UTC", root: root.path)
        }
        #expect(throws: LocksmithError.self) { try ZoneCalendar(name: "Europe") }  // a directory
    }

    /// A zone file copied under another root reads the same as the real one.
    @Test func otherRoot() throws {
        let root = ScratchRoot()
        writeBinary(root, "/usr/share/zoneinfo/Test/Zone", try Syscalls.readFile("/usr/share/zoneinfo/Europe/Berlin"))
        let copy = try ZoneCalendar(name: "Test/Zone", root: root.path + "/")
        let real = try ZoneCalendar(name: "Europe/Berlin", root: "/")
        for t in stride(from: Int64(-2_000_000_000), to: 5_000_000_000, by: 7_777_777) {
            #expect(copy.civil(t) == real.civil(t))
        }
    }

    /// Every prefix of a real file is refused with an error naming the file.
    @Test(arguments: ["Europe/Berlin", "Australia/Lord_Howe", "UTC"])
    func truncatedFiles(_ zone: String) throws {
        let bytes = try Syscalls.readFile("/usr/share/zoneinfo/" + zone)
        let root = ScratchRoot()
        let file = root.path + "/usr/share/zoneinfo/Test/Zone"
        for length in 0..<bytes.count {
            writeBinary(root, "/usr/share/zoneinfo/Test/Zone", Array(bytes.prefix(length)))
            do {
                _ = try ZoneCalendar(name: "Test/Zone", root: root.path)
                Issue.record("accepted \(zone) cut to \(length) of \(bytes.count) bytes")
            } catch let error as LocksmithError {
                #expect(error.kind == .badMessage && error.message.hasPrefix(file + ": not a valid TZif file"), "\(error.message)")
            }
        }
        writeBinary(root, "/usr/share/zoneinfo/Test/Zone", bytes)
        _ = try ZoneCalendar(name: "Test/Zone", root: root.path)
    }

    /// Damaged headers, counts, indexes and footers are refused, each with its reason.
    @Test func damagedFiles() throws {
        let berlin = try Syscalls.readFile("/usr/share/zoneinfo/Europe/Berlin")
        // Offsets of the second (64-bit) header's fields, after the v1 header and data.
        func count(_ b: [UInt8], _ at: Int) -> Int { b[at..<(at + 4)].reduce(0) { $0 << 8 | Int($1) } }
        let v1 = 44 + count(berlin, 32) * 5 + count(berlin, 36) * 6 + count(berlin, 40) + count(berlin, 28) * 8
            + count(berlin, 24) + count(berlin, 20)
        let timecnt = count(berlin, v1 + 32), typecnt = count(berlin, v1 + 36)
        let data = v1 + 44
        func patched(_ at: Int, _ values: [UInt8]) -> [UInt8] {
            var b = berlin
            b.replaceSubrange(at..<(at + values.count), with: values)
            return b
        }
        let footerStart = berlin.dropLast().lastIndex(of: UInt8(ascii: "\n"))!
        func footer(_ text: String) -> [UInt8] { Array(berlin[..<footerStart]) + Array(text.utf8) }
        let cases: [(String, [UInt8])] = [
            ("no TZif magic", patched(0, Array("TZiF".utf8))),
            ("unknown version", patched(4, [UInt8(ascii: "1")])),
            ("unknown version", patched(4, [UInt8(ascii: "5")])),
            ("version differs", patched(v1 + 4, [berlin[4] == UInt8(ascii: "3") ? UInt8(ascii: "4") : UInt8(ascii: "3")])),
            ("no TZif magic", patched(v1, Array("XXXX".utf8))),
            ("truncated", patched(v1 + 32, [0xFF, 0xFF, 0xFF, 0xFF])),  // timecnt
            ("truncated", patched(v1 + 40, [0x7F, 0xFF, 0xFF, 0xFF])),  // charcnt
            ("truncated", patched(32, [0xFF, 0xFF, 0xFF, 0xFF])),  // the v1 timecnt
            ("no local time types", patched(v1 + 36, [0, 0, 0, 0])),
            ("no time zone abbreviations", patched(v1 + 40, [0, 0, 0, 0])),
            ("indicator counts", patched(v1 + 24, [0, 0, 0, 1])),
            ("leap-second", patched(v1 + 28, [0, 0, 0, 1])),
            ("local time type 255", patched(data + timecnt * 8, [0xFF])),
            ("ascending", patched(data, Array(berlin[(data + 8)..<(data + 16)]) + Array(berlin[data..<(data + 8)]))),
            ("abbreviation index", patched(data + timecnt * 9 + 5, [0xFF])),
            ("DST indicator", patched(data + timecnt * 9 + 4, [2])),
            ("UTC offset", patched(data + timecnt * 9, [0x7F, 0, 0, 0])),
            ("UTC offset", patched(data + timecnt * 9, [0x80, 0, 0, 0])),
            ("abbreviation index", patched(data + timecnt * 9 + typecnt * 6 + count(berlin, v1 + 40) - 1, [UInt8(ascii: "X")])),
            ("no footer", patched(footerStart, [UInt8(ascii: "X")])),
            ("does not end in a newline", footer("\nCET-1CEST,M3.5.0,M10.5.0/3")),
            ("printable", footer("\nCET-1\tCEST\n")),
            ("without rules", footer("\nCET-1CEST\n")),
            ("month", footer("\nCET-1CEST,M13.5.0,M10.5.0/3\n")),
            ("week", footer("\nCET-1CEST,M3.6.0,M10.5.0/3\n")),
            ("weekday", footer("\nCET-1CEST,M3.5.7,M10.5.0/3\n")),
            ("Julian day 0", footer("\nCET-1CEST,J0,M10.5.0/3\n")),
            ("Julian day", footer("\nCET-1CEST,J366,M10.5.0/3\n")),
            ("hours", footer("\nCET-1CEST,M3.5.0/168,M10.5.0/3\n")),
            ("hours", footer("\nCET-25\n")),
            ("minutes", footer("\nCET-1:60\n")),
            ("three characters", footer("\nCE-1\n")),
            ("three characters", footer("\n<+1>-1\n")),
            ("<name>", footer("\n<+01-1\n")),
            ("after the rules", footer("\nCET-1CEST,M3.5.0,M10.5.0/3,x\n")),
            ("end rule", footer("\nCET-1CEST,M3.5.0\n")),
            ("hours", footer("\nCET\n")),
            ("three characters", footer("\nCET-1,M3.5.0,M10.5.0\n")),
        ]
        let root = ScratchRoot()
        for (fragment, bytes) in cases {
            writeBinary(root, "/usr/share/zoneinfo/Test/Zone", bytes)
            do {
                _ = try ZoneCalendar(name: "Test/Zone", root: root.path)
                Issue.record("accepted a file with: \(fragment)")
            } catch let error as LocksmithError {
                #expect(error.kind == .badMessage)
                #expect(error.message.contains("/usr/share/zoneinfo/Test/Zone: not a valid TZif file"), "\(error.message)")
                #expect(error.message.contains(fragment), "\(fragment): \(error.message)")
            }
        }
        // A leap-second zone as shipped, where there is one.
        if access("/usr/share/zoneinfo/right/Europe/Berlin", R_OK) == 0 {
            #expect(throws: LocksmithError.self) { try ZoneCalendar(name: "right/Europe/Berlin") }
        }
    }

    @Test func oversizedFilesAreRefused() {
        let root = ScratchRoot()
        let big = tzifFile(types: [(0, false, "UTC")], footer: "UTC0") + [UInt8](repeating: 0, count: 2 << 20)
        writeBinary(root, "/usr/share/zoneinfo/Test/Zone", big)
        do {
            _ = try ZoneCalendar(name: "Test/Zone", root: root.path)
            Issue.record("accepted a 2 MiB file")
        } catch let error as LocksmithError {
            #expect(error.kind == .outOfRange)
            #expect(error.message.hasPrefix("time zone \"Test/Zone\": \(root.path)/usr/share/zoneinfo/Test/Zone: larger than"))
        } catch {
            Issue.record("\(error)")
        }
        // A FIFO must not block the read.
        mkfifo(root.path + "/usr/share/zoneinfo/Test/Fifo", 0o644)
        #expect(throws: LocksmithError.self) { try ZoneCalendar(name: "Test/Fifo", root: root.path) }
    }

    /// Random damage to a real file: refused or read, and then answering without a crash even
    /// at the ends of the ranges.
    @Test func randomDamageNeverCrashes() throws {
        let berlin = try Syscalls.readFile("/usr/share/zoneinfo/Europe/Berlin")
        let root = ScratchRoot()
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func random(_ n: Int) -> Int {  // splitmix64
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Int((z ^ (z >> 31)) % UInt64(n))
        }
        var read = 0
        for _ in 0..<1500 {
            var bytes = berlin
            for _ in 0...random(4) {
                bytes[random(bytes.count)] = random(3) == 0 ? 0xFF : UInt8(random(256))
            }
            writeBinary(root, "/usr/share/zoneinfo/Test/Zone", bytes)
            guard let zone = try? ZoneCalendar(name: "Test/Zone", root: root.path) else { continue }
            read += 1
            exercise(zone)
        }
        #expect(read > 0)
        exercise(try ZoneCalendar(name: "Australia/Lord_Howe"))
        exercise(try ZoneCalendar(name: "UTC"))
    }

    func exercise(_ zone: ZoneCalendar) {
        for t in [Int64.min, .min + 1, -1 << 60, -1, 0, 1_700_000_000, 1 << 60, .max - 1, .max] {
            _ = zone.civil(t)
            _ = zone.utcOffset(at: t)
        }
        for (y, m, d, h, min) in [(Int.min, Int.min, Int.min, Int.min, Int.min), (Int.max, Int.max, Int.max, Int.max, Int.max),
                                  (2024, Int.max, 1, 0, 0), (2024, 1, Int.min, 0, 0), (1 << 41, 1, 1, 0, 0), (2024, 3, 31, 2, 30),
                                  (-(1 << 39), -5, 9, 25, 61), (292_277_026_596, 12, 4, 15, 30)] {
            let t = zone.unixTime(year: y, month: m, day: d, hour: h, minute: min)
            _ = zone.civil(t)
        }
    }

    /// Far from 1970 the fields still follow the proleptic Gregorian calendar.
    @Test func farTimes() throws {
        let utc = try ZoneCalendar(name: "UTC")
        #expect(utc.civil(-62_135_596_800) == CivilTime(year: 1, month: 1, day: 1, hour: 0, minute: 0, second: 0, weekday: 1))
        #expect(utc.civil(253_402_300_799) == CivilTime(year: 9999, month: 12, day: 31, hour: 23, minute: 59, second: 59, weekday: 5))
        #expect(utc.civil(-1) == CivilTime(year: 1969, month: 12, day: 31, hour: 23, minute: 59, second: 59, weekday: 3))
        #expect(utc.unixTime(year: 1, month: 1, day: 1, hour: 0, minute: 0) == -62_135_596_800)
        #expect(utc.unixTime(year: 9999, month: 12, day: 31, hour: 23, minute: 59) == 253_402_300_740)
        #expect(utc.unixTime(year: Int.max, month: 1, day: 1, hour: 0, minute: 0) > 1 << 62)
        #expect(utc.unixTime(year: Int.min, month: 1, day: 1, hour: 0, minute: 0) < -(1 << 62))
        #expect(utc.unixTime(year: 2024, month: 1, day: 1, hour: 24, minute: -1) == 1_704_153_540)  // 2024-01-01 23:59
    }

    /// A window evaluated in a named zone, with the process's own zone left alone.
    @Test func windowInANamedZone() throws {
        let berlin = try ZoneCalendar(name: "Europe/Berlin")
        let w = try RebootWindow(start: "02:30", length: "1h")
        // 2021-03-27 12:00 UTC: the next 02:30 does not exist, so it opens at 03:30 CEST.
        let next = try w.occurrence(now: 1_616_846_400, calendar: berlin)
        #expect(next.start == 1_616_895_000)
    }
}
