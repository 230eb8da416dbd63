// Fuzzes how answers of etcd's v2 keys API are read (Sources/LocksmithEtcd/EtcdWire.swift, V2):
// a read or conditional write (V2.parse), a recursive listing (V2.parseList), a watch answer
// (V2.watchEvent) and the API probe (V2.isV2Answer). Seeds are answers of a real etcd.
//
// Invariants: every failure is a LocksmithError of a kind the client handles (protocol error,
// bad message, permission denied); a value read is the node's value and modifiedIndex, and the
// same value written as a canonical answer reads back equal; a watch answer carrying that node
// reports the same value; an etcd error object is always recognized as a v2 answer.
import LocksmithCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEtcdV2(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let body = Array(inputBytes(data, size))
    let response = HTTPResponse(status: 200, body: body)
    let key = GroupKey.defaultKey
    let tree = JSONTree(body)

    do {
        let result = try V2.parse(response, key: key)
        invariant(tree != nil, "a result from an answer that is not JSON")
        switch result {
        case .value(let v):
            invariant(tree?.node["node"]?["value"]?.bytes == v.bytes, "value is not the node's value")
            invariant(tree?.node["node"]?["modifiedIndex"]?.int64 == v.index, "index is not the node's modifiedIndex")
            if let text = String(validating: v.bytes, as: UTF8.self) {
                let canonical = "{\"action\":\"get\",\"node\":{\"key\":\"/\(key)\",\"value\":\(JSONText.quoted(text)),\"modifiedIndex\":\(v.index),\"createdIndex\":1}}"
                let again = try? V2.parse(HTTPResponse(status: 200, body: Array(canonical.utf8)), key: key)
                guard case .value(let w)? = again else { invariant(false, "canonical answer \(shown(canonical)) not read"); return 0 }
                invariant(w == v, "canonical answer reads differently")
            }
            if tree?.node["errorCode"] == nil {
                invariant(V2.watchEvent(response) == .changed(v), "watch reads the same answer differently")
            }
        case .stored(let index):
            invariant(tree?.node["node"]?["modifiedIndex"]?.int64 == index, "stored index is not modifiedIndex")
        case .missing, .conflict(nil):
            invariant([100, 101, 105].contains(tree?.node["errorCode"]?.int64 ?? -1), "missing or conflict without its error code")
            invariant(V2.isV2Answer(response), "an etcd error object is not a v2 answer")
        case .conflict:
            invariant(false, "a v2 conflict with a value")
        }
    } catch let error as LocksmithError {
        invariant([.protocolError, .badMessage, .permissionDenied].contains(error.kind), "v2 parse failed with kind \(error.kind)")
        invariant(startsWithBytes(error.message, key + ": "), "message does not name the key: \(error.message)")
    } catch {
        invariant(false, "not a LocksmithError: \(error)")
    }

    do {
        _ = try V2.parseList(response, key: GroupKey.prefix)
        invariant(tree != nil, "a listing from an answer that is not JSON")
    } catch let error as LocksmithError {
        invariant([.protocolError, .permissionDenied].contains(error.kind), "v2 list failed with kind \(error.kind)")
    } catch {
        invariant(false, "not a LocksmithError: \(error)")
    }

    if tree == nil {
        invariant(V2.watchEvent(response) == .lost, "a watch answer that is not JSON is not .lost")
        invariant(!V2.isV2Answer(response), "text that is not JSON is a v2 answer")
    }
    return 0
}
