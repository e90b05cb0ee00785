#!/usr/bin/env python3
"""A stand-in for the AUTOMATIC1111 web UI's API, for tests/webui_test.sh.

usage: fake_webui.py --models DIR --port-file FILE

Answers what mergesvd and the optimisation extension call, the way the web
UI does, and records every call:
  POST /sdapi/v1/refresh-checkpoints  lists DIR again (*.safetensors, recursively)
  GET  /sdapi/v1/sd-models            [{title, model_name, hash, sha256, filename, config}]
  POST /sdapi/v1/options              {"sd_model_checkpoint": NAME} "loads" it: NAME must be
                                      a title, name or file stem of the last listing and
                                      the file a valid safetensors file (else 500, as the
                                      web UI raises); its size and sha256 are recorded
  GET  /sdapi/v1/options              {"sd_model_checkpoint": the loaded title}
  POST /sdapi/v1/unload-checkpoint    forgets the loaded model
  POST /sdapi/v1/txt2img              {"images": [base64 of image_bytes], ...}
  POST /sdapi/v1/img2img              the init_images sent, back as images
  GET  /sdapi/v1/progress             {"progress": 0, ...} (the query is recorded)
anything else under /sdapi/ or /bbwm/: 404 {"detail": "Not Found"}.

Test controls (never passed through by mergesvd: not under /sdapi or /bbwm):
  GET  /fake/calls     {"calls": [...], "in_flight": N, "loaded": {...} or null}
  POST /fake/behave    {"status": {PATH: CODE}, "delay": {PATH: SECONDS},
                        "image_bytes": N}: a PATH answers CODE with an error body,
                        or waits SECONDS first (recorded on arrival)
  POST /fake/reset     forgets the calls
"""
import argparse
import base64
import hashlib
import json
import os
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

state_lock = threading.Lock()
state = {
    "calls": [],
    "in_flight": 0,
    "loaded": None,
    "listing": [],
    "behave": {"status": {}, "delay": {}, "image_bytes": 3 * 1024 * 1024},
}
models_dir = None


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def list_checkpoints():
    entries = []
    for folder, _dirs, files in os.walk(models_dir):
        for name in sorted(files):
            if not name.endswith(".safetensors") or name.startswith("."):
                continue
            path = os.path.join(folder, name)
            relative = os.path.relpath(path, models_dir)
            sha256 = sha256_file(path)
            entries.append({
                "title": "%s [%s]" % (relative, sha256[:10]),
                "model_name": os.path.splitext(relative.replace("/", "_"))[0],
                "hash": sha256[:8],
                "sha256": sha256,
                "filename": path,
                "config": None,
                "name": relative,
                "stem": os.path.splitext(name)[0],
            })
    return entries


def safetensors_valid(path):
    with open(path, "rb") as stream:
        head = stream.read(8)
        if len(head) != 8:
            return False
        (length,) = struct.unpack("<Q", head)
        if length < 2 or length > 100 * 1024 * 1024:
            return False
        try:
            header = json.loads(stream.read(length))
        except ValueError:
            return False
    return isinstance(header, dict) and len(header) > 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # quiet: the calls are recorded
        pass

    def answer(self, status, value, raw=None, headers=()):
        body = raw if raw is not None else json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Fake-Webui", "1")
        for name, text in headers:
            self.send_header(name, text)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        return body

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def handle_any(self):
        body = self.read_body()
        path = self.path.split("?", 1)[0]
        if path.startswith("/fake/"):
            return self.control(path, body)
        call = {
            "method": self.command,
            "path": self.path,
            "body_bytes": len(body),
            "body_sha256": hashlib.sha256(body).hexdigest(),
            "headers": {name.lower(): value for name, value in self.headers.items()},
            "done": False,
            "at": time.time(),
        }
        with state_lock:
            state["calls"].append(call)
            state["in_flight"] += 1
            delay = state["behave"]["delay"].get(path, 0)
            forced = state["behave"]["status"].get(path)
        try:
            if delay:
                time.sleep(delay)
            if forced:
                sent = self.answer(forced, {"error": "RuntimeError", "detail": "fake failure",
                                            "body": "", "errors": "forced %d on %s" % (forced, path)})
            else:
                sent = self.route(path, body, call)
            call["answer_bytes"] = len(sent)
            call["answer_sha256"] = hashlib.sha256(sent).hexdigest()
        finally:
            with state_lock:
                state["in_flight"] -= 1
                call["finished_at"] = time.time()
                call["done"] = True

    def route(self, path, body, call):
        try:
            request = json.loads(body) if body else {}
        except ValueError:
            return self.answer(422, {"detail": "body is not JSON"})
        if path == "/sdapi/v1/refresh-checkpoints" and self.command == "POST":
            listing = list_checkpoints()
            with state_lock:
                state["listing"] = listing
            return self.answer(200, None)
        if path == "/sdapi/v1/sd-models" and self.command == "GET":
            with state_lock:
                listing = state["listing"]
            keys = ("title", "model_name", "hash", "sha256", "filename", "config")
            return self.answer(200, [{key: entry[key] for key in keys} for entry in listing])
        if path == "/sdapi/v1/options" and self.command == "POST":
            return self.load(request, call)
        if path == "/sdapi/v1/options" and self.command == "GET":
            with state_lock:
                loaded = state["loaded"]
            return self.answer(200, {"sd_model_checkpoint": loaded and loaded["title"]})
        if path == "/sdapi/v1/unload-checkpoint" and self.command == "POST":
            with state_lock:
                state["loaded"] = None
            return self.answer(200, {})
        if path == "/sdapi/v1/txt2img" and self.command == "POST":
            with state_lock:
                size = state["behave"]["image_bytes"]
            count = int(request.get("batch_size", 1) or 1)
            pattern = bytes(range(256)) * (size // 256 + 2)
            images = [base64.b64encode(pattern[n:n + size]).decode() for n in range(count)]
            return self.answer(200, {"images": images, "parameters": {"prompt": request.get("prompt")},
                                     "info": json.dumps({"sd_model_name": (state["loaded"] or {}).get("title")})},
                               headers=[("X-Images", str(count))])
        if path == "/sdapi/v1/img2img" and self.command == "POST":
            return self.answer(200, {"images": request.get("init_images", []), "info": "echo"})
        if path == "/sdapi/v1/progress" and self.command in ("GET", "HEAD"):
            return self.answer(200, {"progress": 0, "eta_relative": 0, "state": {}, "current_image": None})
        return self.answer(404, {"detail": "Not Found"})

    def load(self, request, call):
        name = request.get("sd_model_checkpoint")
        with state_lock:
            listing = state["listing"]
        found = [entry for entry in listing if name in (entry["title"], entry["name"], entry["stem"])]
        if not found:
            return self.answer(500, {"error": "RuntimeError", "detail": "", "body": "",
                                     "errors": "model %r not found" % name})
        entry = found[0]
        if not os.path.isfile(entry["filename"]) or not safetensors_valid(entry["filename"]):
            return self.answer(500, {"error": "RuntimeError", "detail": "", "body": "",
                                     "errors": "cannot load %s" % entry["filename"]})
        loaded = {"title": entry["title"], "file": entry["filename"],
                  "size": os.path.getsize(entry["filename"]), "sha256": sha256_file(entry["filename"])}
        with state_lock:
            state["loaded"] = loaded
        call["loaded"] = loaded
        return self.answer(200, None)

    def control(self, path, body):
        with state_lock:
            if path == "/fake/calls":
                snapshot = {"calls": list(state["calls"]), "in_flight": state["in_flight"],
                            "loaded": state["loaded"]}
                return self.answer(200, None, raw=json.dumps(snapshot).encode())
            if path == "/fake/reset":
                state["calls"] = []
                return self.answer(200, None)
            if path == "/fake/behave":
                update = json.loads(body or b"{}")
                for key, value in update.items():
                    state["behave"][key] = value
                return self.answer(200, state["behave"])
        return self.answer(404, {"detail": "Not Found"})

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = handle_any


def main():
    global models_dir
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", required=True)
    parser.add_argument("--port-file", required=True)
    args = parser.parse_args()
    models_dir = os.path.realpath(args.models)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with open(args.port_file + ".tmp", "w") as stream:
        stream.write("%d\n" % server.server_address[1])
    os.rename(args.port_file + ".tmp", args.port_file)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
