// Test stub: the uTensor (uTensor/uTensor, re-arch API) declarations that code in the form
// of utensor_cgen's rearch generator uses. Written for tinyir's tests from the project's
// public headers (core/types.hpp, core/tensor.hpp, core/modelBase.hpp,
// allocators/arenaAllocator.hpp, ops/*.hpp); declarations only, nothing runs.
#ifndef TINYIR_STUB_UTENSOR_H_
#define TINYIR_STUB_UTENSOR_H_
#include <stdint.h>
#include <stddef.h>
#include <initializer_list>

namespace uTensor {

enum ttype { i8, u8, i16, u16, i32, u32, flt, undefined };

class TensorShape {
 public:
  TensorShape(std::initializer_list<uint16_t> dims);
};

class QuantizationParams {};
class PerTensorQuantizationParams : public QuantizationParams {
 public:
  PerTensorQuantizationParams(int32_t zp, float scale);
};
class PerChannelQuantizationParams : public QuantizationParams {
 public:
  PerChannelQuantizationParams(std::initializer_list<int32_t> zp,
                               std::initializer_list<float> scale);
};

class TensorInterface {
 public:
  virtual ~TensorInterface();
  void set_quantization_params(const QuantizationParams& params);
};

class RomTensor : public TensorInterface {
 public:
  RomTensor(TensorShape shape, ttype type, const void* buffer);
};

class RamTensor : public TensorInterface {
 public:
  RamTensor(TensorShape shape, ttype type);
};

class Tensor {
 public:
  Tensor();
  Tensor(TensorInterface* ptr);
  TensorInterface* operator->();
  void free();
};

class AllocatorInterface {};

template <size_t size, typename T = uint16_t>
class localCircularArenaAllocator : public AllocatorInterface {};

class Context {
 public:
  static Context* get_default_context();
  void set_metadata_allocator(AllocatorInterface* al);
  void set_ram_data_allocator(AllocatorInterface* al);
};

typedef uint8_t tensor_name_t;

class SimpleNamedTensor {
 public:
  Tensor& tensor();
};

struct NamedTensorRef {
  NamedTensorRef(tensor_name_t name, Tensor& tensor);
};

template <size_t num_inputs, size_t num_outputs>
class ModelInterface {
 public:
  ModelInterface& set_inputs(std::initializer_list<NamedTensorRef> inputs);
  ModelInterface& set_outputs(std::initializer_list<NamedTensorRef> outputs);
  void eval();

 protected:
  virtual void compute() = 0;
  SimpleNamedTensor inputs[num_inputs];
  SimpleNamedTensor outputs[num_outputs];
};

template <size_t num_inputs, size_t num_outputs>
class OperatorInterface {
 public:
  OperatorInterface& set_inputs(std::initializer_list<NamedTensorRef> inputs);
  OperatorInterface& set_outputs(std::initializer_list<NamedTensorRef> outputs);
  void eval();
};

namespace TFLM {
enum TfLiteFusedActivation { kTfLiteActNone = 0, kTfLiteActRelu, kTfLiteActReluN1To1,
                             kTfLiteActRelu6, kTfLiteActTanh, kTfLiteActSignBit,
                             kTfLiteActSigmoid };
}

enum Padding : uint8_t { VALID = 1, SAME = 2 };

namespace ReferenceOperators {
template <typename T>
class Conv2dOperator : public OperatorInterface<3, 1> {
 public:
  enum names_in : uint8_t { in, filter, bias };
  enum names_out : uint8_t { out };
  Conv2dOperator(std::initializer_list<uint16_t> strides, Padding padding);
};
template <typename T>
class MaxPoolOperator : public OperatorInterface<1, 1> {
 public:
  enum names_in : uint8_t { in };
  enum names_out : uint8_t { out };
  MaxPoolOperator(std::initializer_list<uint16_t> k_size,
                  std::initializer_list<uint16_t> strides, Padding padding);
};
template <typename T>
class ReshapeOperator : public OperatorInterface<1, 1> {
 public:
  enum names_in : uint8_t { input };
  enum names_out : uint8_t { output };
  ReshapeOperator(std::initializer_list<uint16_t> new_shape);
};
template <typename T>
class FullyConnectedOperator : public OperatorInterface<3, 1> {
 public:
  enum names_in : uint8_t { input, filter, bias };
  enum names_out : uint8_t { output };
  FullyConnectedOperator(TFLM::TfLiteFusedActivation activation);
};
}  // namespace ReferenceOperators

namespace TflmSymQuantOps {
template <typename T>
class FullyConnectedOperator : public OperatorInterface<3, 1> {
 public:
  enum names_in : uint8_t { input, filter, bias };
  enum names_out : uint8_t { output };
  FullyConnectedOperator(TFLM::TfLiteFusedActivation activation);
};
template <typename T>
class DepthwiseSeparableConvOperator : public OperatorInterface<3, 1> {
 public:
  enum names_in : uint8_t { in, filter, bias };
  enum names_out : uint8_t { out };
  DepthwiseSeparableConvOperator(std::initializer_list<uint16_t> strides, Padding padding,
                                 int depth_multiplier,
                                 std::initializer_list<uint16_t> dilations,
                                 TFLM::TfLiteFusedActivation activation);
};
template <typename Tout, typename Tin>
class QuantizeOperator : public OperatorInterface<1, 1> {
 public:
  enum names_in : uint8_t { input };
  enum names_out : uint8_t { output };
};
template <typename Tout, typename Tin>
class DequantizeOperator : public OperatorInterface<1, 1> {
 public:
  enum names_in : uint8_t { input };
  enum names_out : uint8_t { output };
};
}  // namespace TflmSymQuantOps

}  // namespace uTensor
#endif
