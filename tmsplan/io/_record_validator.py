"""target.schema.json compiled by fastjsonschema (generated: do not edit).

Regenerate with tmsplan.io.record_checks.write_fast_validator().
"""

# ruff: noqa
VERSION = "2.22.3"
from decimal import Decimal
import re
from fastjsonschema import JsonSchemaValueException, JsonSchemaValuesException


REGEX_PATTERNS = {
    '^[0-9a-f]{64}$': re.compile('^[0-9a-f]{64}\\Z')
}

NoneType = type(None)

def validate_https___tmsplan_invalid_schema_target_1_json(data, custom_formats={}, name_prefix=None):
    if not isinstance(data, (dict)):
        raise JsonSchemaValueException("" + (name_prefix or "data") + " must be object", value=data, name="" + (name_prefix or "data") + "", definition={'$schema': 'https://json-schema.org/draft/2020-12/schema', '$id': 'https://tmsplan.invalid/schema/target-1.json', 'title': 'tmsplan plan record (target.json), schema version 1', 'description': "Types of the keys tmsplan reads from a plan record. All coordinates are RAS+ millimetres in the world of the image named by 't1'. Keys not listed here are allowed (other modules add their own); geometric consistency is checked by tmsplan.io.record_checks.", 'type': 'object', 'required': ['tmsplan_version', 'schema_version', 'subject', 'space', 't1', 'roi', 'activation', 'targets', 'parameters', 'warnings', 'outputs'], 'properties': {'tmsplan_version': {'type': 'string'}, 'schema_version': {'const': 1}, 'subject': {'type': 'string'}, 'space': {'type': 'string', 'minLength': 1}, 't1': {'type': 'object', 'required': ['path', 'sha256'], 'properties': {'path': {'type': ['string', 'null']}, 'sha256': {'type': ['string', 'null'], 'pattern': '^[0-9a-f]{64}$'}, 'shape': {'type': 'array', 'items': {'type': 'integer', 'minimum': 1}, 'minItems': 3, 'maxItems': 3}, 'zooms': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 3, 'maxItems': 3}, 'affine': {'type': 'array', 'items': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 4, 'maxItems': 4}, 'minItems': 4, 'maxItems': 4}, 'affine_source': {'type': 'string'}, 'sform_code': {'type': 'integer'}, 'qform_code': {'type': 'integer'}, 'sform': {'oneOf': [{'type': 'array', 'items': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 4, 'maxItems': 4}, 'minItems': 4, 'maxItems': 4}, {'type': 'null'}]}, 'qform': {'oneOf': [{'type': 'array', 'items': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 4, 'maxItems': 4}, 'minItems': 4, 'maxItems': 4}, {'type': 'null'}]}, 'quatern_bcd': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 3, 'maxItems': 3}, 'qoffset_xyz': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 3, 'maxItems': 3}, 'qfac': {'type': 'number'}, 'pixdim': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 3, 'maxItems': 3}}}, 'roi': {'type': ['object', 'null']}, 'activation': {'type': ['object', 'null']}, 'targets': {'type': 'array', 'items': {'type': 'object', 'required': ['name', 'cortical_mm', 'scalp_mm', 'coil_matrix', 'depth_mm', 'handle_direction', 'coil_skin_distance_mm', 'reachable'], 'properties': {'name': {'type': 'string', 'minLength': 1}, 'cortical_mm': {'$ref': 'https://tmsplan.invalid/schema/target-1.json#/$defs/vector3'}, 'scalp_mm': {'$ref': 'https://tmsplan.invalid/schema/target-1.json#/$defs/vector3'}, 'coil_matrix': {'$ref': 'https://tmsplan.invalid/schema/target-1.json#/$defs/matrix4'}, 'depth_mm': {'type': 'number', 'minimum': 0}, 'handle_direction': {'$ref': 'https://tmsplan.invalid/schema/target-1.json#/$defs/vector3'}, 'coil_skin_distance_mm': {'type': 'number', 'minimum': 0}, 'cortical_mni_mm': {'oneOf': [{'$ref': '#/$defs/vector3'}, {'type': 'null'}]}, 'scalp_normal': {'$ref': 'https://tmsplan.invalid/schema/target-1.json#/$defs/vector3'}, 'reachable': {'type': 'boolean'}, 'unreachable_reason': {'type': ['string', 'null']}, 'handle_rule_applied': {'type': 'string'}, 'normal_target_angle_deg': {'type': 'number', 'minimum': 0, 'maximum': 180}, 'snap_distance_mm': {'type': 'number', 'minimum': 0}}}}, 'transform': {'type': ['object', 'null']}, 'head': {'type': ['object', 'null']}, 'parameters': {'type': 'object', 'properties': {'coil_skin_distance_mm': {'type': 'number', 'minimum': 0}, 'max_depth_mm': {'type': 'number', 'exclusiveMinimum': 0}, 'handle_angle_deg': {'type': 'number'}, 'normal_radius_mm': {'type': 'number', 'exclusiveMinimum': 0}, 'threshold': {'type': 'number'}}}, 'conventions': {'type': ['object', 'null']}, 'warnings': {'type': 'array', 'items': {'type': 'string'}}, 'outputs': {'type': 'object', 'additionalProperties': {'type': 'array', 'items': {'type': 'string'}}}}, '$defs': {'vector3': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 3, 'maxItems': 3}, 'matrix4': {'type': 'array', 'items': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 4, 'maxItems': 4}, 'minItems': 4, 'maxItems': 4}, 'target': {'type': 'object', 'required': ['name', 'cortical_mm', 'scalp_mm', 'coil_matrix', 'depth_mm', 'handle_direction', 'coil_skin_distance_mm', 'reachable'], 'properties': {'name': {'type': 'string', 'minLength': 1}, 'cortical_mm': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 3, 'maxItems': 3}, 'scalp_mm': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 3, 'maxItems': 3}, 'coil_matrix': {'type': 'array', 'items': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 4, 'maxItems': 4}, 'minItems': 4, 'maxItems': 4}, 'depth_mm': {'type': 'number', 'minimum': 0}, 'handle_direction': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 3, 'maxItems': 3}, 'coil_skin_distance_mm': {'type': 'number', 'minimum': 0}, 'cortical_mni_mm': {'oneOf': [{'type': 'array', 'items': {'type': 'number'}, 'minItems': 3, 'maxItems': 3}, {'type': 'null'}]}, 'scalp_normal': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 3, 'maxItems': 3}, 'reachable': {'type': 'boolean'}, 'unreachable_reason': {'type': ['string', 'null']}, 'handle_rule_applied': {'type': 'string'}, 'normal_target_angle_deg': {'type': 'number', 'minimum': 0, 'maximum': 180}, 'snap_distance_mm': {'type': 'number', 'minimum': 0}}}}}, rule='type')
    data_is_dict = isinstance(data, dict)
    if data_is_dict:
        data__missing_keys = set(['tmsplan_version', 'schema_version', 'subject', 'space', 't1', 'roi', 'activation', 'targets', 'parameters', 'warnings', 'outputs']) - data.keys()
        if data__missing_keys:
            raise JsonSchemaValueException("" + (name_prefix or "data") + " must contain " + (str(sorted(data__missing_keys)) + " properties"), value=data, name="" + (name_prefix or "data") + "", definition={'$schema': 'https://json-schema.org/draft/2020-12/schema', '$id': 'https://tmsplan.invalid/schema/target-1.json', 'title': 'tmsplan plan record (target.json), schema version 1', 'description': "Types of the keys tmsplan reads from a plan record. All coordinates are RAS+ millimetres in the world of the image named by 't1'. Keys not listed here are allowed (other modules add their own); geometric consistency is checked by tmsplan.io.record_checks.", 'type': 'object', 'required': ['tmsplan_version', 'schema_version', 'subject', 'space', 't1', 'roi', 'activation', 'targets', 'parameters', 'warnings', 'outputs'], 'properties': {'tmsplan_version': {'type': 'string'}, 'schema_version': {'const': 1}, 'subject': {'type': 'string'}, 'space': {'type': 'string', 'minLength': 1}, 't1': {'type': 'object', 'required': ['path', 'sha256'], 'properties': {'path': {'type': ['string', 'null']}, 'sha256': {'type': ['string', 'null'], 'pattern': '^[0-9a-f]{64}$'}, 'shape': {'type': 'array', 'items': {'type': 'integer', 'minimum': 1}, 'minItems': 3, 'maxItems': 3}, 'zooms': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 3, 'maxItems': 3}, 'affine': {'type': 'array', 'items': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 4, 'maxItems': 4}, 'minItems': 4, 'maxItems': 4}, 'affine_source': {'type': 'string'}, 'sform_code': {'type': 'integer'}, 'qform_code': {'type': 'integer'}, 'sform': {'oneOf': [{'type': 'array', 'items': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 4, 'maxItems': 4}, 'minItems': 4, 'maxItems': 4}, {'type': 'null'}]}, 'qform': {'oneOf': [{'type': 'array', 'items': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 4, 'maxItems': 4}, 'minItems': 4, 'maxItems': 4}, {'type': 'null'}]}, 'quatern_bcd': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 3, 'maxItems': 3}, 'qoffset_xyz': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 3, 'maxItems': 3}, 'qfac': {'type': 'number'}, 'pixdim': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 3, 'maxItems': 3}}}, 'roi': {'type': ['object', 'null']}, 'activation': {'type': ['object', 'null']}, 'targets': {'type': 'array', 'items': {'type': 'object', 'required': ['name', 'cortical_mm', 'scalp_mm', 'coil_matrix', 'depth_mm', 'handle_direction', 'coil_skin_distance_mm', 'reachable'], 'properties': {'name': {'type': 'string', 'minLength': 1}, 'cortical_mm': {'$ref': 'https://tmsplan.invalid/schema/target-1.json#/$defs/vector3'}, 'scalp_mm': {'$ref': 'https://tmsplan.invalid/schema/target-1.json#/$defs/vector3'}, 'coil_matrix': {'$ref': 'https://tmsplan.invalid/schema/target-1.json#/$defs/matrix4'}, 'depth_mm': {'type': 'number', 'minimum': 0}, 'handle_direction': {'$ref': 'https://tmsplan.invalid/schema/target-1.json#/$defs/vector3'}, 'coil_skin_distance_mm': {'type': 'number', 'minimum': 0}, 'cortical_mni_mm': {'oneOf': [{'$ref': '#/$defs/vector3'}, {'type': 'null'}]}, 'scalp_normal': {'$ref': 'https://tmsplan.invalid/schema/target-1.json#/$defs/vector3'}, 'reachable': {'type': 'boolean'}, 'unreachable_reason': {'type': ['string', 'null']}, 'handle_rule_applied': {'type': 'string'}, 'normal_target_angle_deg': {'type': 'number', 'minimum': 0, 'maximum': 180}, 'snap_distance_mm': {'type': 'number', 'minimum': 0}}}}, 'transform': {'type': ['object', 'null']}, 'head': {'type': ['object', 'null']}, 'parameters': {'type': 'object', 'properties': {'coil_skin_distance_mm': {'type': 'number', 'minimum': 0}, 'max_depth_mm': {'type': 'number', 'exclusiveMinimum': 0}, 'handle_angle_deg': {'type': 'number'}, 'normal_radius_mm': {'type': 'number', 'exclusiveMinimum': 0}, 'threshold': {'type': 'number'}}}, 'conventions': {'type': ['object', 'null']}, 'warnings': {'type': 'array', 'items': {'type': 'string'}}, 'outputs': {'type': 'object', 'additionalProperties': {'type': 'array', 'items': {'type': 'string'}}}}, '$defs': {'vector3': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 3, 'maxItems': 3}, 'matrix4': {'type': 'array', 'items': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 4, 'maxItems': 4}, 'minItems': 4, 'maxItems': 4}, 'target': {'type': 'object', 'required': ['name', 'cortical_mm', 'scalp_mm', 'coil_matrix', 'depth_mm', 'handle_direction', 'coil_skin_distance_mm', 'reachable'], 'properties': {'name': {'type': 'string', 'minLength': 1}, 'cortical_mm': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 3, 'maxItems': 3}, 'scalp_mm': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 3, 'maxItems': 3}, 'coil_matrix': {'type': 'array', 'items': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 4, 'maxItems': 4}, 'minItems': 4, 'maxItems': 4}, 'depth_mm': {'type': 'number', 'minimum': 0}, 'handle_direction': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 3, 'maxItems': 3}, 'coil_skin_distance_mm': {'type': 'number', 'minimum': 0}, 'cortical_mni_mm': {'oneOf': [{'type': 'array', 'items': {'type': 'number'}, 'minItems': 3, 'maxItems': 3}, {'type': 'null'}]}, 'scalp_normal': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 3, 'maxItems': 3}, 'reachable': {'type': 'boolean'}, 'unreachable_reason': {'type': ['string', 'null']}, 'handle_rule_applied': {'type': 'string'}, 'normal_target_angle_deg': {'type': 'number', 'minimum': 0, 'maximum': 180}, 'snap_distance_mm': {'type': 'number', 'minimum': 0}}}}}, rule='required')
        data_keys = set(data.keys())
        if "tmsplan_version" in data_keys:
            data_keys.remove("tmsplan_version")
            data__tmsplanversion = data["tmsplan_version"]
            if not isinstance(data__tmsplanversion, (str)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".tmsplan_version must be string", value=data__tmsplanversion, name="" + (name_prefix or "data") + ".tmsplan_version", definition={'type': 'string'}, rule='type')
        if "schema_version" in data_keys:
            data_keys.remove("schema_version")
            data__schemaversion = data["schema_version"]
            if not (isinstance(data__schemaversion, (int, float)) and not isinstance(data__schemaversion, bool) and data__schemaversion == 1):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".schema_version must be same as const definition: 1", value=data__schemaversion, name="" + (name_prefix or "data") + ".schema_version", definition={'const': 1}, rule='const')
        if "subject" in data_keys:
            data_keys.remove("subject")
            data__subject = data["subject"]
            if not isinstance(data__subject, (str)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".subject must be string", value=data__subject, name="" + (name_prefix or "data") + ".subject", definition={'type': 'string'}, rule='type')
        if "space" in data_keys:
            data_keys.remove("space")
            data__space = data["space"]
            if not isinstance(data__space, (str)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".space must be string", value=data__space, name="" + (name_prefix or "data") + ".space", definition={'type': 'string', 'minLength': 1}, rule='type')
            if isinstance(data__space, str):
                data__space_len = len(data__space)
                if data__space_len < 1:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".space must be longer than or equal to 1 characters", value=data__space, name="" + (name_prefix or "data") + ".space", definition={'type': 'string', 'minLength': 1}, rule='minLength')
        if "t1" in data_keys:
            data_keys.remove("t1")
            data__t1 = data["t1"]
            if not isinstance(data__t1, (dict)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".t1 must be object", value=data__t1, name="" + (name_prefix or "data") + ".t1", definition={'type': 'object', 'required': ['path', 'sha256'], 'properties': {'path': {'type': ['string', 'null']}, 'sha256': {'type': ['string', 'null'], 'pattern': '^[0-9a-f]{64}$'}, 'shape': {'type': 'array', 'items': {'type': 'integer', 'minimum': 1}, 'minItems': 3, 'maxItems': 3}, 'zooms': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 3, 'maxItems': 3}, 'affine': {'type': 'array', 'items': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 4, 'maxItems': 4}, 'minItems': 4, 'maxItems': 4}, 'affine_source': {'type': 'string'}, 'sform_code': {'type': 'integer'}, 'qform_code': {'type': 'integer'}, 'sform': {'oneOf': [{'type': 'array', 'items': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 4, 'maxItems': 4}, 'minItems': 4, 'maxItems': 4}, {'type': 'null'}]}, 'qform': {'oneOf': [{'type': 'array', 'items': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 4, 'maxItems': 4}, 'minItems': 4, 'maxItems': 4}, {'type': 'null'}]}, 'quatern_bcd': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 3, 'maxItems': 3}, 'qoffset_xyz': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 3, 'maxItems': 3}, 'qfac': {'type': 'number'}, 'pixdim': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 3, 'maxItems': 3}}}, rule='type')
            data__t1_is_dict = isinstance(data__t1, dict)
            if data__t1_is_dict:
                data__t1__missing_keys = set(['path', 'sha256']) - data__t1.keys()
                if data__t1__missing_keys:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".t1 must contain " + (str(sorted(data__t1__missing_keys)) + " properties"), value=data__t1, name="" + (name_prefix or "data") + ".t1", definition={'type': 'object', 'required': ['path', 'sha256'], 'properties': {'path': {'type': ['string', 'null']}, 'sha256': {'type': ['string', 'null'], 'pattern': '^[0-9a-f]{64}$'}, 'shape': {'type': 'array', 'items': {'type': 'integer', 'minimum': 1}, 'minItems': 3, 'maxItems': 3}, 'zooms': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 3, 'maxItems': 3}, 'affine': {'type': 'array', 'items': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 4, 'maxItems': 4}, 'minItems': 4, 'maxItems': 4}, 'affine_source': {'type': 'string'}, 'sform_code': {'type': 'integer'}, 'qform_code': {'type': 'integer'}, 'sform': {'oneOf': [{'type': 'array', 'items': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 4, 'maxItems': 4}, 'minItems': 4, 'maxItems': 4}, {'type': 'null'}]}, 'qform': {'oneOf': [{'type': 'array', 'items': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 4, 'maxItems': 4}, 'minItems': 4, 'maxItems': 4}, {'type': 'null'}]}, 'quatern_bcd': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 3, 'maxItems': 3}, 'qoffset_xyz': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 3, 'maxItems': 3}, 'qfac': {'type': 'number'}, 'pixdim': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 3, 'maxItems': 3}}}, rule='required')
                data__t1_keys = set(data__t1.keys())
                if "path" in data__t1_keys:
                    data__t1_keys.remove("path")
                    data__t1__path = data__t1["path"]
                    if not isinstance(data__t1__path, (str, NoneType)):
                        raise JsonSchemaValueException("" + (name_prefix or "data") + ".t1.path must be string or null", value=data__t1__path, name="" + (name_prefix or "data") + ".t1.path", definition={'type': ['string', 'null']}, rule='type')
                if "sha256" in data__t1_keys:
                    data__t1_keys.remove("sha256")
                    data__t1__sha256 = data__t1["sha256"]
                    if not isinstance(data__t1__sha256, (str, NoneType)):
                        raise JsonSchemaValueException("" + (name_prefix or "data") + ".t1.sha256 must be string or null", value=data__t1__sha256, name="" + (name_prefix or "data") + ".t1.sha256", definition={'type': ['string', 'null'], 'pattern': '^[0-9a-f]{64}$'}, rule='type')
                    if isinstance(data__t1__sha256, str):
                        if not REGEX_PATTERNS['^[0-9a-f]{64}$'].search(data__t1__sha256):
                            raise JsonSchemaValueException("" + (name_prefix or "data") + ".t1.sha256 must match pattern ^[0-9a-f]{64}$", value=data__t1__sha256, name="" + (name_prefix or "data") + ".t1.sha256", definition={'type': ['string', 'null'], 'pattern': '^[0-9a-f]{64}$'}, rule='pattern')
                if "shape" in data__t1_keys:
                    data__t1_keys.remove("shape")
                    data__t1__shape = data__t1["shape"]
                    if not isinstance(data__t1__shape, (list, tuple)):
                        raise JsonSchemaValueException("" + (name_prefix or "data") + ".t1.shape must be array", value=data__t1__shape, name="" + (name_prefix or "data") + ".t1.shape", definition={'type': 'array', 'items': {'type': 'integer', 'minimum': 1}, 'minItems': 3, 'maxItems': 3}, rule='type')
                    data__t1__shape_is_list = isinstance(data__t1__shape, (list, tuple))
                    if data__t1__shape_is_list:
                        data__t1__shape_len = len(data__t1__shape)
                        if data__t1__shape_len < 3:
                            raise JsonSchemaValueException("" + (name_prefix or "data") + ".t1.shape must contain at least 3 items", value=data__t1__shape, name="" + (name_prefix or "data") + ".t1.shape", definition={'type': 'array', 'items': {'type': 'integer', 'minimum': 1}, 'minItems': 3, 'maxItems': 3}, rule='minItems')
                        if data__t1__shape_len > 3:
                            raise JsonSchemaValueException("" + (name_prefix or "data") + ".t1.shape must contain less than or equal to 3 items", value=data__t1__shape, name="" + (name_prefix or "data") + ".t1.shape", definition={'type': 'array', 'items': {'type': 'integer', 'minimum': 1}, 'minItems': 3, 'maxItems': 3}, rule='maxItems')
                        for data__t1__shape_x, data__t1__shape_item in enumerate(data__t1__shape):
                            if not isinstance(data__t1__shape_item, (int)) and not (isinstance(data__t1__shape_item, float) and data__t1__shape_item.is_integer()) or isinstance(data__t1__shape_item, bool):
                                raise JsonSchemaValueException("" + (name_prefix or "data") + ".t1.shape[{data__t1__shape_x}]".format(**locals()) + " must be integer", value=data__t1__shape_item, name="" + (name_prefix or "data") + ".t1.shape[{data__t1__shape_x}]".format(**locals()) + "", definition={'type': 'integer', 'minimum': 1}, rule='type')
                            if isinstance(data__t1__shape_item, (int, float, Decimal)) and not isinstance(data__t1__shape_item, bool):
                                if data__t1__shape_item < 1:
                                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".t1.shape[{data__t1__shape_x}]".format(**locals()) + " must be bigger than or equal to 1", value=data__t1__shape_item, name="" + (name_prefix or "data") + ".t1.shape[{data__t1__shape_x}]".format(**locals()) + "", definition={'type': 'integer', 'minimum': 1}, rule='minimum')
                if "zooms" in data__t1_keys:
                    data__t1_keys.remove("zooms")
                    data__t1__zooms = data__t1["zooms"]
                    validate_https___tmsplan_invalid_schema_target_1_json___defs_vector3(data__t1__zooms, custom_formats, (name_prefix or "data") + ".t1.zooms")
                if "affine" in data__t1_keys:
                    data__t1_keys.remove("affine")
                    data__t1__affine = data__t1["affine"]
                    validate_https___tmsplan_invalid_schema_target_1_json___defs_matrix4(data__t1__affine, custom_formats, (name_prefix or "data") + ".t1.affine")
                if "affine_source" in data__t1_keys:
                    data__t1_keys.remove("affine_source")
                    data__t1__affinesource = data__t1["affine_source"]
                    if not isinstance(data__t1__affinesource, (str)):
                        raise JsonSchemaValueException("" + (name_prefix or "data") + ".t1.affine_source must be string", value=data__t1__affinesource, name="" + (name_prefix or "data") + ".t1.affine_source", definition={'type': 'string'}, rule='type')
                if "sform_code" in data__t1_keys:
                    data__t1_keys.remove("sform_code")
                    data__t1__sformcode = data__t1["sform_code"]
                    if not isinstance(data__t1__sformcode, (int)) and not (isinstance(data__t1__sformcode, float) and data__t1__sformcode.is_integer()) or isinstance(data__t1__sformcode, bool):
                        raise JsonSchemaValueException("" + (name_prefix or "data") + ".t1.sform_code must be integer", value=data__t1__sformcode, name="" + (name_prefix or "data") + ".t1.sform_code", definition={'type': 'integer'}, rule='type')
                if "qform_code" in data__t1_keys:
                    data__t1_keys.remove("qform_code")
                    data__t1__qformcode = data__t1["qform_code"]
                    if not isinstance(data__t1__qformcode, (int)) and not (isinstance(data__t1__qformcode, float) and data__t1__qformcode.is_integer()) or isinstance(data__t1__qformcode, bool):
                        raise JsonSchemaValueException("" + (name_prefix or "data") + ".t1.qform_code must be integer", value=data__t1__qformcode, name="" + (name_prefix or "data") + ".t1.qform_code", definition={'type': 'integer'}, rule='type')
                if "sform" in data__t1_keys:
                    data__t1_keys.remove("sform")
                    data__t1__sform = data__t1["sform"]
                    data__t1__sform_one_of_count1 = 0
                    if data__t1__sform_one_of_count1 < 2:
                        try:
                            validate_https___tmsplan_invalid_schema_target_1_json___defs_matrix4(data__t1__sform, custom_formats, (name_prefix or "data") + ".t1.sform")
                            data__t1__sform_one_of_count1 += 1
                        except (JsonSchemaValueException, JsonSchemaValuesException): pass
                    if data__t1__sform_one_of_count1 < 2:
                        try:
                            if not isinstance(data__t1__sform, (NoneType)):
                                raise JsonSchemaValueException("" + (name_prefix or "data") + ".t1.sform must be null", value=data__t1__sform, name="" + (name_prefix or "data") + ".t1.sform", definition={'type': 'null'}, rule='type')
                            data__t1__sform_one_of_count1 += 1
                        except (JsonSchemaValueException, JsonSchemaValuesException): pass
                    if data__t1__sform_one_of_count1 != 1:
                        raise JsonSchemaValueException("" + (name_prefix or "data") + ".t1.sform must be valid exactly by one definition" + (" (" + str(data__t1__sform_one_of_count1) + " matches found)"), value=data__t1__sform, name="" + (name_prefix or "data") + ".t1.sform", definition={'oneOf': [{'type': 'array', 'items': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 4, 'maxItems': 4}, 'minItems': 4, 'maxItems': 4}, {'type': 'null'}]}, rule='oneOf')
                if "qform" in data__t1_keys:
                    data__t1_keys.remove("qform")
                    data__t1__qform = data__t1["qform"]
                    data__t1__qform_one_of_count2 = 0
                    if data__t1__qform_one_of_count2 < 2:
                        try:
                            validate_https___tmsplan_invalid_schema_target_1_json___defs_matrix4(data__t1__qform, custom_formats, (name_prefix or "data") + ".t1.qform")
                            data__t1__qform_one_of_count2 += 1
                        except (JsonSchemaValueException, JsonSchemaValuesException): pass
                    if data__t1__qform_one_of_count2 < 2:
                        try:
                            if not isinstance(data__t1__qform, (NoneType)):
                                raise JsonSchemaValueException("" + (name_prefix or "data") + ".t1.qform must be null", value=data__t1__qform, name="" + (name_prefix or "data") + ".t1.qform", definition={'type': 'null'}, rule='type')
                            data__t1__qform_one_of_count2 += 1
                        except (JsonSchemaValueException, JsonSchemaValuesException): pass
                    if data__t1__qform_one_of_count2 != 1:
                        raise JsonSchemaValueException("" + (name_prefix or "data") + ".t1.qform must be valid exactly by one definition" + (" (" + str(data__t1__qform_one_of_count2) + " matches found)"), value=data__t1__qform, name="" + (name_prefix or "data") + ".t1.qform", definition={'oneOf': [{'type': 'array', 'items': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 4, 'maxItems': 4}, 'minItems': 4, 'maxItems': 4}, {'type': 'null'}]}, rule='oneOf')
                if "quatern_bcd" in data__t1_keys:
                    data__t1_keys.remove("quatern_bcd")
                    data__t1__quaternbcd = data__t1["quatern_bcd"]
                    validate_https___tmsplan_invalid_schema_target_1_json___defs_vector3(data__t1__quaternbcd, custom_formats, (name_prefix or "data") + ".t1.quatern_bcd")
                if "qoffset_xyz" in data__t1_keys:
                    data__t1_keys.remove("qoffset_xyz")
                    data__t1__qoffsetxyz = data__t1["qoffset_xyz"]
                    validate_https___tmsplan_invalid_schema_target_1_json___defs_vector3(data__t1__qoffsetxyz, custom_formats, (name_prefix or "data") + ".t1.qoffset_xyz")
                if "qfac" in data__t1_keys:
                    data__t1_keys.remove("qfac")
                    data__t1__qfac = data__t1["qfac"]
                    if not isinstance(data__t1__qfac, (int, float, Decimal)) or isinstance(data__t1__qfac, bool):
                        raise JsonSchemaValueException("" + (name_prefix or "data") + ".t1.qfac must be number", value=data__t1__qfac, name="" + (name_prefix or "data") + ".t1.qfac", definition={'type': 'number'}, rule='type')
                if "pixdim" in data__t1_keys:
                    data__t1_keys.remove("pixdim")
                    data__t1__pixdim = data__t1["pixdim"]
                    validate_https___tmsplan_invalid_schema_target_1_json___defs_vector3(data__t1__pixdim, custom_formats, (name_prefix or "data") + ".t1.pixdim")
        if "roi" in data_keys:
            data_keys.remove("roi")
            data__roi = data["roi"]
            if not isinstance(data__roi, (dict, NoneType)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".roi must be object or null", value=data__roi, name="" + (name_prefix or "data") + ".roi", definition={'type': ['object', 'null']}, rule='type')
        if "activation" in data_keys:
            data_keys.remove("activation")
            data__activation = data["activation"]
            if not isinstance(data__activation, (dict, NoneType)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".activation must be object or null", value=data__activation, name="" + (name_prefix or "data") + ".activation", definition={'type': ['object', 'null']}, rule='type')
        if "targets" in data_keys:
            data_keys.remove("targets")
            data__targets = data["targets"]
            if not isinstance(data__targets, (list, tuple)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".targets must be array", value=data__targets, name="" + (name_prefix or "data") + ".targets", definition={'type': 'array', 'items': {'type': 'object', 'required': ['name', 'cortical_mm', 'scalp_mm', 'coil_matrix', 'depth_mm', 'handle_direction', 'coil_skin_distance_mm', 'reachable'], 'properties': {'name': {'type': 'string', 'minLength': 1}, 'cortical_mm': {'$ref': 'https://tmsplan.invalid/schema/target-1.json#/$defs/vector3'}, 'scalp_mm': {'$ref': 'https://tmsplan.invalid/schema/target-1.json#/$defs/vector3'}, 'coil_matrix': {'$ref': 'https://tmsplan.invalid/schema/target-1.json#/$defs/matrix4'}, 'depth_mm': {'type': 'number', 'minimum': 0}, 'handle_direction': {'$ref': 'https://tmsplan.invalid/schema/target-1.json#/$defs/vector3'}, 'coil_skin_distance_mm': {'type': 'number', 'minimum': 0}, 'cortical_mni_mm': {'oneOf': [{'$ref': '#/$defs/vector3'}, {'type': 'null'}]}, 'scalp_normal': {'$ref': 'https://tmsplan.invalid/schema/target-1.json#/$defs/vector3'}, 'reachable': {'type': 'boolean'}, 'unreachable_reason': {'type': ['string', 'null']}, 'handle_rule_applied': {'type': 'string'}, 'normal_target_angle_deg': {'type': 'number', 'minimum': 0, 'maximum': 180}, 'snap_distance_mm': {'type': 'number', 'minimum': 0}}}}, rule='type')
            data__targets_is_list = isinstance(data__targets, (list, tuple))
            if data__targets_is_list:
                data__targets_len = len(data__targets)
                for data__targets_x, data__targets_item in enumerate(data__targets):
                    validate_https___tmsplan_invalid_schema_target_1_json___defs_target(data__targets_item, custom_formats, (name_prefix or "data") + ".targets[{data__targets_x}]".format(**locals()))
        if "transform" in data_keys:
            data_keys.remove("transform")
            data__transform = data["transform"]
            if not isinstance(data__transform, (dict, NoneType)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".transform must be object or null", value=data__transform, name="" + (name_prefix or "data") + ".transform", definition={'type': ['object', 'null']}, rule='type')
        if "head" in data_keys:
            data_keys.remove("head")
            data__head = data["head"]
            if not isinstance(data__head, (dict, NoneType)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".head must be object or null", value=data__head, name="" + (name_prefix or "data") + ".head", definition={'type': ['object', 'null']}, rule='type')
        if "parameters" in data_keys:
            data_keys.remove("parameters")
            data__parameters = data["parameters"]
            if not isinstance(data__parameters, (dict)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".parameters must be object", value=data__parameters, name="" + (name_prefix or "data") + ".parameters", definition={'type': 'object', 'properties': {'coil_skin_distance_mm': {'type': 'number', 'minimum': 0}, 'max_depth_mm': {'type': 'number', 'exclusiveMinimum': 0}, 'handle_angle_deg': {'type': 'number'}, 'normal_radius_mm': {'type': 'number', 'exclusiveMinimum': 0}, 'threshold': {'type': 'number'}}}, rule='type')
            data__parameters_is_dict = isinstance(data__parameters, dict)
            if data__parameters_is_dict:
                data__parameters_keys = set(data__parameters.keys())
                if "coil_skin_distance_mm" in data__parameters_keys:
                    data__parameters_keys.remove("coil_skin_distance_mm")
                    data__parameters__coilskindistancemm = data__parameters["coil_skin_distance_mm"]
                    if not isinstance(data__parameters__coilskindistancemm, (int, float, Decimal)) or isinstance(data__parameters__coilskindistancemm, bool):
                        raise JsonSchemaValueException("" + (name_prefix or "data") + ".parameters.coil_skin_distance_mm must be number", value=data__parameters__coilskindistancemm, name="" + (name_prefix or "data") + ".parameters.coil_skin_distance_mm", definition={'type': 'number', 'minimum': 0}, rule='type')
                    if isinstance(data__parameters__coilskindistancemm, (int, float, Decimal)) and not isinstance(data__parameters__coilskindistancemm, bool):
                        if data__parameters__coilskindistancemm < 0:
                            raise JsonSchemaValueException("" + (name_prefix or "data") + ".parameters.coil_skin_distance_mm must be bigger than or equal to 0", value=data__parameters__coilskindistancemm, name="" + (name_prefix or "data") + ".parameters.coil_skin_distance_mm", definition={'type': 'number', 'minimum': 0}, rule='minimum')
                if "max_depth_mm" in data__parameters_keys:
                    data__parameters_keys.remove("max_depth_mm")
                    data__parameters__maxdepthmm = data__parameters["max_depth_mm"]
                    if not isinstance(data__parameters__maxdepthmm, (int, float, Decimal)) or isinstance(data__parameters__maxdepthmm, bool):
                        raise JsonSchemaValueException("" + (name_prefix or "data") + ".parameters.max_depth_mm must be number", value=data__parameters__maxdepthmm, name="" + (name_prefix or "data") + ".parameters.max_depth_mm", definition={'type': 'number', 'exclusiveMinimum': 0}, rule='type')
                    if isinstance(data__parameters__maxdepthmm, (int, float, Decimal)) and not isinstance(data__parameters__maxdepthmm, bool):
                        if data__parameters__maxdepthmm <= 0:
                            raise JsonSchemaValueException("" + (name_prefix or "data") + ".parameters.max_depth_mm must be bigger than 0", value=data__parameters__maxdepthmm, name="" + (name_prefix or "data") + ".parameters.max_depth_mm", definition={'type': 'number', 'exclusiveMinimum': 0}, rule='exclusiveMinimum')
                if "handle_angle_deg" in data__parameters_keys:
                    data__parameters_keys.remove("handle_angle_deg")
                    data__parameters__handleangledeg = data__parameters["handle_angle_deg"]
                    if not isinstance(data__parameters__handleangledeg, (int, float, Decimal)) or isinstance(data__parameters__handleangledeg, bool):
                        raise JsonSchemaValueException("" + (name_prefix or "data") + ".parameters.handle_angle_deg must be number", value=data__parameters__handleangledeg, name="" + (name_prefix or "data") + ".parameters.handle_angle_deg", definition={'type': 'number'}, rule='type')
                if "normal_radius_mm" in data__parameters_keys:
                    data__parameters_keys.remove("normal_radius_mm")
                    data__parameters__normalradiusmm = data__parameters["normal_radius_mm"]
                    if not isinstance(data__parameters__normalradiusmm, (int, float, Decimal)) or isinstance(data__parameters__normalradiusmm, bool):
                        raise JsonSchemaValueException("" + (name_prefix or "data") + ".parameters.normal_radius_mm must be number", value=data__parameters__normalradiusmm, name="" + (name_prefix or "data") + ".parameters.normal_radius_mm", definition={'type': 'number', 'exclusiveMinimum': 0}, rule='type')
                    if isinstance(data__parameters__normalradiusmm, (int, float, Decimal)) and not isinstance(data__parameters__normalradiusmm, bool):
                        if data__parameters__normalradiusmm <= 0:
                            raise JsonSchemaValueException("" + (name_prefix or "data") + ".parameters.normal_radius_mm must be bigger than 0", value=data__parameters__normalradiusmm, name="" + (name_prefix or "data") + ".parameters.normal_radius_mm", definition={'type': 'number', 'exclusiveMinimum': 0}, rule='exclusiveMinimum')
                if "threshold" in data__parameters_keys:
                    data__parameters_keys.remove("threshold")
                    data__parameters__threshold = data__parameters["threshold"]
                    if not isinstance(data__parameters__threshold, (int, float, Decimal)) or isinstance(data__parameters__threshold, bool):
                        raise JsonSchemaValueException("" + (name_prefix or "data") + ".parameters.threshold must be number", value=data__parameters__threshold, name="" + (name_prefix or "data") + ".parameters.threshold", definition={'type': 'number'}, rule='type')
        if "conventions" in data_keys:
            data_keys.remove("conventions")
            data__conventions = data["conventions"]
            if not isinstance(data__conventions, (dict, NoneType)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".conventions must be object or null", value=data__conventions, name="" + (name_prefix or "data") + ".conventions", definition={'type': ['object', 'null']}, rule='type')
        if "warnings" in data_keys:
            data_keys.remove("warnings")
            data__warnings = data["warnings"]
            if not isinstance(data__warnings, (list, tuple)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".warnings must be array", value=data__warnings, name="" + (name_prefix or "data") + ".warnings", definition={'type': 'array', 'items': {'type': 'string'}}, rule='type')
            data__warnings_is_list = isinstance(data__warnings, (list, tuple))
            if data__warnings_is_list:
                data__warnings_len = len(data__warnings)
                for data__warnings_x, data__warnings_item in enumerate(data__warnings):
                    if not isinstance(data__warnings_item, (str)):
                        raise JsonSchemaValueException("" + (name_prefix or "data") + ".warnings[{data__warnings_x}]".format(**locals()) + " must be string", value=data__warnings_item, name="" + (name_prefix or "data") + ".warnings[{data__warnings_x}]".format(**locals()) + "", definition={'type': 'string'}, rule='type')
        if "outputs" in data_keys:
            data_keys.remove("outputs")
            data__outputs = data["outputs"]
            if not isinstance(data__outputs, (dict)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".outputs must be object", value=data__outputs, name="" + (name_prefix or "data") + ".outputs", definition={'type': 'object', 'additionalProperties': {'type': 'array', 'items': {'type': 'string'}}}, rule='type')
            data__outputs_is_dict = isinstance(data__outputs, dict)
            if data__outputs_is_dict:
                data__outputs_keys = set(data__outputs.keys())
                for data__outputs_key in data__outputs_keys:
                    if data__outputs_key not in []:
                        data__outputs_value = data__outputs.get(data__outputs_key)
                        if not isinstance(data__outputs_value, (list, tuple)):
                            raise JsonSchemaValueException("" + (name_prefix or "data") + ".outputs.{data__outputs_key}".format(**locals()) + " must be array", value=data__outputs_value, name="" + (name_prefix or "data") + ".outputs.{data__outputs_key}".format(**locals()) + "", definition={'type': 'array', 'items': {'type': 'string'}}, rule='type')
                        data__outputs_value_is_list = isinstance(data__outputs_value, (list, tuple))
                        if data__outputs_value_is_list:
                            data__outputs_value_len = len(data__outputs_value)
                            for data__outputs_value_x, data__outputs_value_item in enumerate(data__outputs_value):
                                if not isinstance(data__outputs_value_item, (str)):
                                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".outputs.{data__outputs_key}[{data__outputs_value_x}]".format(**locals()) + " must be string", value=data__outputs_value_item, name="" + (name_prefix or "data") + ".outputs.{data__outputs_key}[{data__outputs_value_x}]".format(**locals()) + "", definition={'type': 'string'}, rule='type')
    return data

def validate_https___tmsplan_invalid_schema_target_1_json___defs_target(data, custom_formats={}, name_prefix=None):
    if not isinstance(data, (dict)):
        raise JsonSchemaValueException("" + (name_prefix or "data") + " must be object", value=data, name="" + (name_prefix or "data") + "", definition={'type': 'object', 'required': ['name', 'cortical_mm', 'scalp_mm', 'coil_matrix', 'depth_mm', 'handle_direction', 'coil_skin_distance_mm', 'reachable'], 'properties': {'name': {'type': 'string', 'minLength': 1}, 'cortical_mm': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 3, 'maxItems': 3}, 'scalp_mm': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 3, 'maxItems': 3}, 'coil_matrix': {'type': 'array', 'items': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 4, 'maxItems': 4}, 'minItems': 4, 'maxItems': 4}, 'depth_mm': {'type': 'number', 'minimum': 0}, 'handle_direction': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 3, 'maxItems': 3}, 'coil_skin_distance_mm': {'type': 'number', 'minimum': 0}, 'cortical_mni_mm': {'oneOf': [{'type': 'array', 'items': {'type': 'number'}, 'minItems': 3, 'maxItems': 3}, {'type': 'null'}]}, 'scalp_normal': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 3, 'maxItems': 3}, 'reachable': {'type': 'boolean'}, 'unreachable_reason': {'type': ['string', 'null']}, 'handle_rule_applied': {'type': 'string'}, 'normal_target_angle_deg': {'type': 'number', 'minimum': 0, 'maximum': 180}, 'snap_distance_mm': {'type': 'number', 'minimum': 0}}}, rule='type')
    data_is_dict = isinstance(data, dict)
    if data_is_dict:
        data__missing_keys = set(['name', 'cortical_mm', 'scalp_mm', 'coil_matrix', 'depth_mm', 'handle_direction', 'coil_skin_distance_mm', 'reachable']) - data.keys()
        if data__missing_keys:
            raise JsonSchemaValueException("" + (name_prefix or "data") + " must contain " + (str(sorted(data__missing_keys)) + " properties"), value=data, name="" + (name_prefix or "data") + "", definition={'type': 'object', 'required': ['name', 'cortical_mm', 'scalp_mm', 'coil_matrix', 'depth_mm', 'handle_direction', 'coil_skin_distance_mm', 'reachable'], 'properties': {'name': {'type': 'string', 'minLength': 1}, 'cortical_mm': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 3, 'maxItems': 3}, 'scalp_mm': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 3, 'maxItems': 3}, 'coil_matrix': {'type': 'array', 'items': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 4, 'maxItems': 4}, 'minItems': 4, 'maxItems': 4}, 'depth_mm': {'type': 'number', 'minimum': 0}, 'handle_direction': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 3, 'maxItems': 3}, 'coil_skin_distance_mm': {'type': 'number', 'minimum': 0}, 'cortical_mni_mm': {'oneOf': [{'type': 'array', 'items': {'type': 'number'}, 'minItems': 3, 'maxItems': 3}, {'type': 'null'}]}, 'scalp_normal': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 3, 'maxItems': 3}, 'reachable': {'type': 'boolean'}, 'unreachable_reason': {'type': ['string', 'null']}, 'handle_rule_applied': {'type': 'string'}, 'normal_target_angle_deg': {'type': 'number', 'minimum': 0, 'maximum': 180}, 'snap_distance_mm': {'type': 'number', 'minimum': 0}}}, rule='required')
        data_keys = set(data.keys())
        if "name" in data_keys:
            data_keys.remove("name")
            data__name = data["name"]
            if not isinstance(data__name, (str)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".name must be string", value=data__name, name="" + (name_prefix or "data") + ".name", definition={'type': 'string', 'minLength': 1}, rule='type')
            if isinstance(data__name, str):
                data__name_len = len(data__name)
                if data__name_len < 1:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".name must be longer than or equal to 1 characters", value=data__name, name="" + (name_prefix or "data") + ".name", definition={'type': 'string', 'minLength': 1}, rule='minLength')
        if "cortical_mm" in data_keys:
            data_keys.remove("cortical_mm")
            data__corticalmm = data["cortical_mm"]
            validate_https___tmsplan_invalid_schema_target_1_json___defs_vector3(data__corticalmm, custom_formats, (name_prefix or "data") + ".cortical_mm")
        if "scalp_mm" in data_keys:
            data_keys.remove("scalp_mm")
            data__scalpmm = data["scalp_mm"]
            validate_https___tmsplan_invalid_schema_target_1_json___defs_vector3(data__scalpmm, custom_formats, (name_prefix or "data") + ".scalp_mm")
        if "coil_matrix" in data_keys:
            data_keys.remove("coil_matrix")
            data__coilmatrix = data["coil_matrix"]
            validate_https___tmsplan_invalid_schema_target_1_json___defs_matrix4(data__coilmatrix, custom_formats, (name_prefix or "data") + ".coil_matrix")
        if "depth_mm" in data_keys:
            data_keys.remove("depth_mm")
            data__depthmm = data["depth_mm"]
            if not isinstance(data__depthmm, (int, float, Decimal)) or isinstance(data__depthmm, bool):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".depth_mm must be number", value=data__depthmm, name="" + (name_prefix or "data") + ".depth_mm", definition={'type': 'number', 'minimum': 0}, rule='type')
            if isinstance(data__depthmm, (int, float, Decimal)) and not isinstance(data__depthmm, bool):
                if data__depthmm < 0:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".depth_mm must be bigger than or equal to 0", value=data__depthmm, name="" + (name_prefix or "data") + ".depth_mm", definition={'type': 'number', 'minimum': 0}, rule='minimum')
        if "handle_direction" in data_keys:
            data_keys.remove("handle_direction")
            data__handledirection = data["handle_direction"]
            validate_https___tmsplan_invalid_schema_target_1_json___defs_vector3(data__handledirection, custom_formats, (name_prefix or "data") + ".handle_direction")
        if "coil_skin_distance_mm" in data_keys:
            data_keys.remove("coil_skin_distance_mm")
            data__coilskindistancemm = data["coil_skin_distance_mm"]
            if not isinstance(data__coilskindistancemm, (int, float, Decimal)) or isinstance(data__coilskindistancemm, bool):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".coil_skin_distance_mm must be number", value=data__coilskindistancemm, name="" + (name_prefix or "data") + ".coil_skin_distance_mm", definition={'type': 'number', 'minimum': 0}, rule='type')
            if isinstance(data__coilskindistancemm, (int, float, Decimal)) and not isinstance(data__coilskindistancemm, bool):
                if data__coilskindistancemm < 0:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".coil_skin_distance_mm must be bigger than or equal to 0", value=data__coilskindistancemm, name="" + (name_prefix or "data") + ".coil_skin_distance_mm", definition={'type': 'number', 'minimum': 0}, rule='minimum')
        if "cortical_mni_mm" in data_keys:
            data_keys.remove("cortical_mni_mm")
            data__corticalmnimm = data["cortical_mni_mm"]
            data__corticalmnimm_one_of_count3 = 0
            if data__corticalmnimm_one_of_count3 < 2:
                try:
                    validate_https___tmsplan_invalid_schema_target_1_json___defs_vector3(data__corticalmnimm, custom_formats, (name_prefix or "data") + ".cortical_mni_mm")
                    data__corticalmnimm_one_of_count3 += 1
                except (JsonSchemaValueException, JsonSchemaValuesException): pass
            if data__corticalmnimm_one_of_count3 < 2:
                try:
                    if not isinstance(data__corticalmnimm, (NoneType)):
                        raise JsonSchemaValueException("" + (name_prefix or "data") + ".cortical_mni_mm must be null", value=data__corticalmnimm, name="" + (name_prefix or "data") + ".cortical_mni_mm", definition={'type': 'null'}, rule='type')
                    data__corticalmnimm_one_of_count3 += 1
                except (JsonSchemaValueException, JsonSchemaValuesException): pass
            if data__corticalmnimm_one_of_count3 != 1:
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".cortical_mni_mm must be valid exactly by one definition" + (" (" + str(data__corticalmnimm_one_of_count3) + " matches found)"), value=data__corticalmnimm, name="" + (name_prefix or "data") + ".cortical_mni_mm", definition={'oneOf': [{'type': 'array', 'items': {'type': 'number'}, 'minItems': 3, 'maxItems': 3}, {'type': 'null'}]}, rule='oneOf')
        if "scalp_normal" in data_keys:
            data_keys.remove("scalp_normal")
            data__scalpnormal = data["scalp_normal"]
            validate_https___tmsplan_invalid_schema_target_1_json___defs_vector3(data__scalpnormal, custom_formats, (name_prefix or "data") + ".scalp_normal")
        if "reachable" in data_keys:
            data_keys.remove("reachable")
            data__reachable = data["reachable"]
            if not isinstance(data__reachable, (bool)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".reachable must be boolean", value=data__reachable, name="" + (name_prefix or "data") + ".reachable", definition={'type': 'boolean'}, rule='type')
        if "unreachable_reason" in data_keys:
            data_keys.remove("unreachable_reason")
            data__unreachablereason = data["unreachable_reason"]
            if not isinstance(data__unreachablereason, (str, NoneType)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".unreachable_reason must be string or null", value=data__unreachablereason, name="" + (name_prefix or "data") + ".unreachable_reason", definition={'type': ['string', 'null']}, rule='type')
        if "handle_rule_applied" in data_keys:
            data_keys.remove("handle_rule_applied")
            data__handleruleapplied = data["handle_rule_applied"]
            if not isinstance(data__handleruleapplied, (str)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".handle_rule_applied must be string", value=data__handleruleapplied, name="" + (name_prefix or "data") + ".handle_rule_applied", definition={'type': 'string'}, rule='type')
        if "normal_target_angle_deg" in data_keys:
            data_keys.remove("normal_target_angle_deg")
            data__normaltargetangledeg = data["normal_target_angle_deg"]
            if not isinstance(data__normaltargetangledeg, (int, float, Decimal)) or isinstance(data__normaltargetangledeg, bool):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".normal_target_angle_deg must be number", value=data__normaltargetangledeg, name="" + (name_prefix or "data") + ".normal_target_angle_deg", definition={'type': 'number', 'minimum': 0, 'maximum': 180}, rule='type')
            if isinstance(data__normaltargetangledeg, (int, float, Decimal)) and not isinstance(data__normaltargetangledeg, bool):
                if data__normaltargetangledeg < 0:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".normal_target_angle_deg must be bigger than or equal to 0", value=data__normaltargetangledeg, name="" + (name_prefix or "data") + ".normal_target_angle_deg", definition={'type': 'number', 'minimum': 0, 'maximum': 180}, rule='minimum')
                if data__normaltargetangledeg > 180:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".normal_target_angle_deg must be smaller than or equal to 180", value=data__normaltargetangledeg, name="" + (name_prefix or "data") + ".normal_target_angle_deg", definition={'type': 'number', 'minimum': 0, 'maximum': 180}, rule='maximum')
        if "snap_distance_mm" in data_keys:
            data_keys.remove("snap_distance_mm")
            data__snapdistancemm = data["snap_distance_mm"]
            if not isinstance(data__snapdistancemm, (int, float, Decimal)) or isinstance(data__snapdistancemm, bool):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".snap_distance_mm must be number", value=data__snapdistancemm, name="" + (name_prefix or "data") + ".snap_distance_mm", definition={'type': 'number', 'minimum': 0}, rule='type')
            if isinstance(data__snapdistancemm, (int, float, Decimal)) and not isinstance(data__snapdistancemm, bool):
                if data__snapdistancemm < 0:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".snap_distance_mm must be bigger than or equal to 0", value=data__snapdistancemm, name="" + (name_prefix or "data") + ".snap_distance_mm", definition={'type': 'number', 'minimum': 0}, rule='minimum')
    return data

def validate_https___tmsplan_invalid_schema_target_1_json___defs_matrix4(data, custom_formats={}, name_prefix=None):
    if not isinstance(data, (list, tuple)):
        raise JsonSchemaValueException("" + (name_prefix or "data") + " must be array", value=data, name="" + (name_prefix or "data") + "", definition={'type': 'array', 'items': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 4, 'maxItems': 4}, 'minItems': 4, 'maxItems': 4}, rule='type')
    data_is_list = isinstance(data, (list, tuple))
    if data_is_list:
        data_len = len(data)
        if data_len < 4:
            raise JsonSchemaValueException("" + (name_prefix or "data") + " must contain at least 4 items", value=data, name="" + (name_prefix or "data") + "", definition={'type': 'array', 'items': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 4, 'maxItems': 4}, 'minItems': 4, 'maxItems': 4}, rule='minItems')
        if data_len > 4:
            raise JsonSchemaValueException("" + (name_prefix or "data") + " must contain less than or equal to 4 items", value=data, name="" + (name_prefix or "data") + "", definition={'type': 'array', 'items': {'type': 'array', 'items': {'type': 'number'}, 'minItems': 4, 'maxItems': 4}, 'minItems': 4, 'maxItems': 4}, rule='maxItems')
        for data_x, data_item in enumerate(data):
            if not isinstance(data_item, (list, tuple)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + "[{data_x}]".format(**locals()) + " must be array", value=data_item, name="" + (name_prefix or "data") + "[{data_x}]".format(**locals()) + "", definition={'type': 'array', 'items': {'type': 'number'}, 'minItems': 4, 'maxItems': 4}, rule='type')
            data_item_is_list = isinstance(data_item, (list, tuple))
            if data_item_is_list:
                data_item_len = len(data_item)
                if data_item_len < 4:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + "[{data_x}]".format(**locals()) + " must contain at least 4 items", value=data_item, name="" + (name_prefix or "data") + "[{data_x}]".format(**locals()) + "", definition={'type': 'array', 'items': {'type': 'number'}, 'minItems': 4, 'maxItems': 4}, rule='minItems')
                if data_item_len > 4:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + "[{data_x}]".format(**locals()) + " must contain less than or equal to 4 items", value=data_item, name="" + (name_prefix or "data") + "[{data_x}]".format(**locals()) + "", definition={'type': 'array', 'items': {'type': 'number'}, 'minItems': 4, 'maxItems': 4}, rule='maxItems')
                for data_item_x, data_item_item in enumerate(data_item):
                    if not isinstance(data_item_item, (int, float, Decimal)) or isinstance(data_item_item, bool):
                        raise JsonSchemaValueException("" + (name_prefix or "data") + "[{data_x}][{data_item_x}]".format(**locals()) + " must be number", value=data_item_item, name="" + (name_prefix or "data") + "[{data_x}][{data_item_x}]".format(**locals()) + "", definition={'type': 'number'}, rule='type')
    return data

def validate_https___tmsplan_invalid_schema_target_1_json___defs_vector3(data, custom_formats={}, name_prefix=None):
    if not isinstance(data, (list, tuple)):
        raise JsonSchemaValueException("" + (name_prefix or "data") + " must be array", value=data, name="" + (name_prefix or "data") + "", definition={'type': 'array', 'items': {'type': 'number'}, 'minItems': 3, 'maxItems': 3}, rule='type')
    data_is_list = isinstance(data, (list, tuple))
    if data_is_list:
        data_len = len(data)
        if data_len < 3:
            raise JsonSchemaValueException("" + (name_prefix or "data") + " must contain at least 3 items", value=data, name="" + (name_prefix or "data") + "", definition={'type': 'array', 'items': {'type': 'number'}, 'minItems': 3, 'maxItems': 3}, rule='minItems')
        if data_len > 3:
            raise JsonSchemaValueException("" + (name_prefix or "data") + " must contain less than or equal to 3 items", value=data, name="" + (name_prefix or "data") + "", definition={'type': 'array', 'items': {'type': 'number'}, 'minItems': 3, 'maxItems': 3}, rule='maxItems')
        for data_x, data_item in enumerate(data):
            if not isinstance(data_item, (int, float, Decimal)) or isinstance(data_item, bool):
                raise JsonSchemaValueException("" + (name_prefix or "data") + "[{data_x}]".format(**locals()) + " must be number", value=data_item, name="" + (name_prefix or "data") + "[{data_x}]".format(**locals()) + "", definition={'type': 'number'}, rule='type')
    return data

validate = validate_https___tmsplan_invalid_schema_target_1_json
SCHEMA_SHA256 = "a053d1b8ba0bbcee70a32c19dfb220dd2766492405556f8829b5daf30106637b"
