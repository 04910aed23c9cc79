"""Reading configs and checkpoints written by microgesture 0.1.

0.1 described a model by `model.arch` (skeleton, rgb, cmtf, concat) with one `model.skeleton`
section (its `stream` naming the skeleton modality) and one `model.rgb` section; 0.2 names
streams by modality (`model.streams`) with a `model.fusion.kind`. `migrate_config` rewrites the
old shape (a YAML config, or the config stored in a checkpoint); `migrate_state_dict` renames a
0.1 checkpoint's weights onto the 0.2 module (same values, so predictions are unchanged).
"""

from __future__ import annotations

import copy
from typing import Any

_LIGHT_ONLY = ("width", "depth")
_MVIT_ONLY = ("weights", "kinetics", "freeze", "unfreeze_blocks")


def is_old_model(model: Any) -> bool:
    return isinstance(model, dict) and "streams" not in model and any(k in model for k in ("arch", "skeleton", "rgb"))


def _old_parts(model: dict) -> tuple[str, str, dict, dict]:
    """(arch, skeleton stream name, skeleton encoder config, rgb encoder config) of a 0.1 model section."""
    arch = model.get("arch", "skeleton")
    skeleton = dict(model.get("skeleton") or {})
    stream = skeleton.pop("stream", "joint")
    skeleton["encoder"] = "agcn"
    rgb = dict(model.get("rgb") or {})
    rgb.setdefault("encoder", "light")
    for key in _MVIT_ONLY if rgb["encoder"] == "light" else _LIGHT_ONLY:
        rgb.pop(key, None)
    return arch, stream, skeleton, rgb


def migrate_config(data: dict) -> dict:
    """A 0.2 config dict from a 0.1 one (anything else is returned unchanged)."""
    if not isinstance(data, dict) or not is_old_model(data.get("model")):
        return data
    data = copy.deepcopy(data)
    model = data["model"]
    arch, stream, skeleton, rgb = _old_parts(model)
    streams: dict[str, dict] = {}
    if arch != "skeleton":
        streams["rgb"] = rgb
    if arch != "rgb":
        streams[stream] = skeleton
    new = {"streams": streams}
    if arch in ("cmtf", "concat"):
        new["fusion"] = {"kind": arch, **(model.get("fusion") or {})}
    data["model"] = new
    data_section = data.get("data")
    if isinstance(data_section, dict) and data_section.get("rgb") is None:
        data_section.pop("rgb", None)
    return data


def migrate_state_dict(state: dict[str, Any], old_model: dict) -> dict[str, Any]:
    """Rename a 0.1 LightningModule state dict (`model.*`) onto the 0.2 module."""
    arch, stream, _, _ = _old_parts(old_model)
    out = {}
    for key, value in state.items():
        if not key.startswith("model."):
            out[key] = value
            continue
        renamed = _rename(key[len("model."):], value, arch, stream)
        out.update({f"model.{k}": v for k, v in renamed.items()})
    return out


def _rename(key: str, value: Any, arch: str, stream: str) -> dict[str, Any]:
    if arch in ("skeleton", "rgb"):
        return {f"encoders.{stream if arch == 'skeleton' else 'rgb'}.{key}": value}
    for old, new in (("rgb_encoder.", "encoders.rgb."), ("skeleton_encoder.", f"encoders.{stream}.")):
        if key.startswith(old):
            rest = key[len(old):]
            # 0.1 kept the streams' own heads in a fusion model, unused: 0.2 drops them.
            return {} if rest.startswith("head") else {new + rest: value}
    if key.startswith("fusion."):
        return _rename_fusion(key[len("fusion."):], value, arch, stream)
    return {key: value}


def _rename_fusion(key: str, value: Any, arch: str, stream: str) -> dict[str, Any]:
    names = {"rgb": "rgb", "skel": stream}
    if key.startswith("head."):  # 0.1 fusion heads: CMTF Sequential(Dropout, Linear), concat Linear
        leaf = key.rsplit(".", 1)[-1]
        return {f"heads.mg.fc.fused.{leaf}": value}
    if key in ("modality", "null"):
        return {f"fusion.{key}.rgb": value[0], f"fusion.{key}.{stream}": value[1]}
    if key == "rgb_pos_table":
        return {"fusion.seq_pos.rgb": value}
    if key == "joint_pos":
        import torch

        padded = torch.zeros(max(128, value.shape[0]), value.shape[1], dtype=value.dtype)
        padded[: value.shape[0]] = value
        return {f"fusion.joint_pos.{stream}": padded}
    for old in ("rgb", "skel"):
        for kind in ("proj", "norm"):
            prefix = f"{old}_{kind}."
            if key.startswith(prefix):
                return {f"fusion.{kind}.{names[old]}.{key[len(prefix):]}": value}
    parts = key.split(".")
    if len(parts) > 3 and parts[0] == "layers" and parts[2] in names:
        return {f"fusion.layers.{parts[1]}.streams.{names[parts[2]]}.{'.'.join(parts[3:])}": value}
    return {f"fusion.{key}": value}
