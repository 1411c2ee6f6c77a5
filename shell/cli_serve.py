"""`spiral serve-generator`: a local backbone behind the OpenAI-style `/v1/videos` API.

Put a model on a GPU box once and point any number of SPIRAL runs (`--backbone remote` with
SPIRAL_GENERATOR_URL) at it, or any client of vLLM-Omni's and SGLang Diffusion's video API.
"""

from __future__ import annotations

import argparse

from ..tools.errors import InputError
from ..tools.video import SegmentRequest, backbone_info, load_generator
from ..tools.video.engine_server import serve
from ..vocabulary.config import RunContext
from ..vocabulary.environment import environment


def add_parser(sub) -> None:
    p = sub.add_parser("serve-generator", help="serve a backbone over the OpenAI-style /v1/videos API",
                       description="Serve a local backbone (default: tabletop-tiny) over the /v1/videos protocol "
                                   "that vLLM-Omni and SGLang Diffusion speak; use it with --backbone remote and "
                                   "SPIRAL_GENERATOR_URL=http://HOST:PORT/v1. With SPIRAL_GENERATOR_API_KEY set, "
                                   "every call must carry it as a bearer token.")
    p.add_argument("--backbone", default="tabletop-tiny", help="the backbone to serve (spiral backbones)")
    p.add_argument("--model", default="", help="its weights: a local pipeline folder or hub id (default: its own)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (default: the GPU when there is one)")
    p.add_argument("--dtype", default="auto", help="float32, bfloat16, float16 (default: the backbone's)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=8091, help="port to listen on (default: 8091; 0: any free port)")


def cmd_serve_generator(args: argparse.Namespace) -> int:
    if args.backbone == "remote":
        raise InputError("--backbone remote would serve a video engine by calling a video engine; serve a local "
                         "backbone (spiral backbones)")
    if not 0 <= args.port < 65536:
        raise InputError(f"--port must be between 0 (any free port) and 65535; got {args.port}")
    context = RunContext(backbone=args.backbone, model=args.model, device=args.device, dtype=args.dtype)
    options = context.generator_options()
    info = backbone_info(args.backbone)

    def check(request: SegmentRequest) -> None:  # each job gets the backbone's own checks, as a 400
        info.check(num_frames=request.num_frames, height=request.height, width=request.width, **options)

    generator = load_generator(args.backbone, **options)
    key = environment().backbone_setting("generator_api_key")
    server = serve(generator, args.host, args.port, api_key=key, check=check)
    print(f"serving {args.backbone} on http://{args.host}:{server.server_address[1]}/v1 "
          f"({'bearer key required' if key else 'no key: anyone who can reach it may use it'}); Ctrl-C stops",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
