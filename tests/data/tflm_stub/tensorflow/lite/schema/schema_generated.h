// Test stub of the flatbuffer schema header: only what main.cc uses.
#ifndef TINYIR_STUB_SCHEMA_GENERATED_H_
#define TINYIR_STUB_SCHEMA_GENERATED_H_
#include <cstdint>
#define TFLITE_SCHEMA_VERSION (3)
namespace tflite {
struct Model { uint32_t version() const; };
const Model* GetModel(const void* buf);
}  // namespace tflite
#endif
