import Testing
@testable import LocksmithCore

@Suite struct DurationTests {
    static let s: Int64 = 1_000_000_000

    @Test(arguments: [
        ("0", 0), ("+0", 0), ("-0", 0),
        ("1h30m", 90 * 60 * s), ("45m", 45 * 60 * s), ("10s", 10 * s), ("1.5h", 5400 * s),
        ("300ms", 300_000_000), ("2h45m30.5s", (2 * 3600 + 45 * 60 + 30) * s + 500_000_000),
        ("1ns", 1), ("1us", 1000), ("1\u{00B5}s", 1000), ("1\u{03BC}s", 1000), ("1ms", 1_000_000),
        ("-1h", -3600 * s), ("+5s", 5 * s), (".5s", 500_000_000), ("1.s", s), ("1h1h", 7200 * s),
        ("2562047h47m16.854775807s", Int64.max), ("-2562047h47m16.854775808s", Int64.min),
    ] as [(String, Int64)])
    func parsesGoDurations(text: String, nanoseconds: Int64) throws {
        #expect(try GoDuration.parse(text) == nanoseconds)
    }

    @Test(arguments: ["", "1", "1j", "h", "1h-1m", ".", "-", "+", "1.2.3s", "1 h", " 1h", "1h ", "2562048h",
                      "9223372036854775808ns", "99999999999999999999s", "1e3s", "0x10s"])
    func refusesWhatGoRefuses(text: String) {
        #expect(throws: LocksmithError.self) { try GoDuration.parse(text) }
    }

    @Test(arguments: [
        (0, "0s"), (10 * s, "10s"), (90 * 60 * s, "1h30m0s"), (45 * 60 * s, "45m0s"), (1_500_000_000, "1.5s"),
        (300_000_000, "300ms"), (1500, "1.5\u{00B5}s"), (7, "7ns"), (-90 * s, "-1m30s"), (86399 * s, "23h59m59s"),
    ] as [(Int64, String)])
    func formatsAsGoDoes(nanoseconds: Int64, text: String) {
        #expect(GoDuration.format(nanoseconds) == text)
    }
}
