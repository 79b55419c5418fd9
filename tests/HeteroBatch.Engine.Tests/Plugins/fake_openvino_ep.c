/*
 * A stand-in for OpenVINO's plugin execution provider, for tests on machines without OpenVINO.
 * It registers like the real one (CreateEpFactories/ReleaseEpFactory), names itself
 * "OpenVINOExecutionProvider" and offers three devices, each with the real plugin's
 * "ov_device" metadata: the host's CPU (ov_device=CPU) and a made-up Intel GPU
 * (ov_device=GPU) and NPU (ov_device=NPU). Its execution provider claims no node, so a
 * session on it runs everything on ONNX Runtime's CPU provider: enough for discovery, unit
 * mapping and the probe session. Built by the tests with the machine's C compiler.
 * Written against ONNX Runtime's plugin EP API version 23 (ORT 1.23), the oldest that the
 * real plugin needs, so ORT calls nothing newer.
 */
#include <stdlib.h>
#include <string.h>
#include "onnxruntime_c_api.h"
/* onnxruntime_c_api.h includes onnxruntime_ep_c_api.h */

#define FAKE_EP_NAME "OpenVINOExecutionProvider"
#define FAKE_API_VERSION 23
#define INTEL_VENDOR_ID 0x8086

typedef struct FakeFactory {
  OrtEpFactory base; /* first, so that an OrtEpFactory* is a FakeFactory* */
  const OrtApi* api;
  const OrtEpApi* ep_api;
  OrtHardwareDevice* gpu; /* made up here; released with the factory */
  OrtHardwareDevice* npu;
} FakeFactory;

typedef struct FakeEp {
  OrtEp base;
} FakeEp;

static const char* ORT_API_CALL EpGetName(const OrtEp* ep) { (void)ep; return FAKE_EP_NAME; }

static OrtStatus* ORT_API_CALL EpGetCapability(OrtEp* ep, const OrtGraph* graph, OrtEpGraphSupportInfo* info) {
  (void)ep; (void)graph; (void)info;
  return NULL; /* claims no node */
}

static OrtStatus* ORT_API_CALL EpCompile(OrtEp* ep, const OrtGraph** graphs, const OrtNode** fused, size_t count,
                                         OrtNodeComputeInfo** infos, OrtNode** ep_context_nodes) {
  (void)ep; (void)graphs; (void)fused; (void)count; (void)infos; (void)ep_context_nodes;
  return NULL; /* never called: nothing is claimed */
}

static void ORT_API_CALL EpReleaseNodeComputeInfos(OrtEp* ep, OrtNodeComputeInfo** infos, size_t n) {
  (void)ep; (void)infos; (void)n;
}

static const char* ORT_API_CALL FactoryGetName(const OrtEpFactory* f) { (void)f; return FAKE_EP_NAME; }
static const char* ORT_API_CALL FactoryGetVendor(const OrtEpFactory* f) { (void)f; return "HeteroBatch tests"; }
static uint32_t ORT_API_CALL FactoryGetVendorId(const OrtEpFactory* f) { (void)f; return INTEL_VENDOR_ID; }
static const char* ORT_API_CALL FactoryGetVersion(const OrtEpFactory* f) { (void)f; return "0.0.1"; }

static OrtStatus* AddDevice(FakeFactory* f, const OrtHardwareDevice* hw, const char* ov_device,
                            OrtEpDevice** out, size_t max, size_t* n) {
  if (*n >= max) return NULL;
  OrtKeyValuePairs* metadata = NULL;
  f->api->CreateKeyValuePairs(&metadata);
  f->api->AddKeyValuePair(metadata, "ov_device", ov_device);
  OrtStatus* status = f->ep_api->CreateEpDevice(&f->base, hw, metadata, NULL, &out[*n]);
  f->api->ReleaseKeyValuePairs(metadata);
  if (status == NULL) (*n)++;
  return status;
}

static OrtStatus* ORT_API_CALL FactoryGetSupportedDevices(OrtEpFactory* self, const OrtHardwareDevice* const* devices,
                                                          size_t num_devices, OrtEpDevice** ep_devices,
                                                          size_t max_ep_devices, size_t* num_ep_devices) {
  FakeFactory* f = (FakeFactory*)self;
  OrtStatus* status = NULL;
  *num_ep_devices = 0;
  for (size_t i = 0; i < num_devices && status == NULL; i++)
    if (f->api->HardwareDevice_Type(devices[i]) == OrtHardwareDeviceType_CPU)
    {
      status = AddDevice(f, devices[i], "CPU", ep_devices, max_ep_devices, num_ep_devices);
      break;
    }
  if (status == NULL && f->gpu == NULL)
    status = f->ep_api->CreateHardwareDevice(OrtHardwareDeviceType_GPU, INTEL_VENDOR_ID, 0x46a6, "Intel", NULL, &f->gpu);
  if (status == NULL && f->npu == NULL)
    status = f->ep_api->CreateHardwareDevice(OrtHardwareDeviceType_NPU, INTEL_VENDOR_ID, 0x7d1d, "Intel", NULL, &f->npu);
  if (status == NULL) status = AddDevice(f, f->gpu, "GPU", ep_devices, max_ep_devices, num_ep_devices);
  if (status == NULL) status = AddDevice(f, f->npu, "NPU", ep_devices, max_ep_devices, num_ep_devices);
  return status;
}

static OrtStatus* ORT_API_CALL FactoryCreateEp(OrtEpFactory* self, const OrtHardwareDevice* const* devices,
                                               const OrtKeyValuePairs* const* metadata, size_t num_devices,
                                               const OrtSessionOptions* options, const OrtLogger* logger, OrtEp** ep) {
  (void)devices; (void)metadata; (void)num_devices; (void)options; (void)logger;
  FakeFactory* f = (FakeFactory*)self;
  FakeEp* e = (FakeEp*)calloc(1, sizeof(FakeEp));
  if (e == NULL) return f->api->CreateStatus(ORT_FAIL, "fake OpenVINO EP: out of memory");
  e->base.ort_version_supported = FAKE_API_VERSION;
  e->base.GetName = EpGetName;
  e->base.GetCapability = EpGetCapability;
  e->base.Compile = EpCompile;
  e->base.ReleaseNodeComputeInfos = EpReleaseNodeComputeInfos;
  *ep = &e->base;
  return NULL;
}

static void ORT_API_CALL FactoryReleaseEp(OrtEpFactory* self, OrtEp* ep) { (void)self; free(ep); }

static OrtStatus* ORT_API_CALL FactoryValidate(OrtEpFactory* self, const OrtHardwareDevice* const* devices, size_t n,
                                               const char* info, OrtCompiledModelCompatibility* out) {
  (void)self; (void)devices; (void)n; (void)info;
  *out = OrtCompiledModelCompatibility_EP_NOT_APPLICABLE;
  return NULL;
}

static OrtStatus* ORT_API_CALL FactoryCreateAllocator(OrtEpFactory* self, const OrtMemoryInfo* info,
                                                      const OrtKeyValuePairs* options, OrtAllocator** allocator) {
  (void)self; (void)info; (void)options;
  *allocator = NULL;
  return NULL;
}

static void ORT_API_CALL FactoryReleaseAllocator(OrtEpFactory* self, OrtAllocator* allocator) { (void)self; (void)allocator; }

static OrtStatus* ORT_API_CALL FactoryCreateDataTransfer(OrtEpFactory* self, OrtDataTransferImpl** out) {
  (void)self;
  *out = NULL;
  return NULL;
}

static bool ORT_API_CALL FactoryIsStreamAware(const OrtEpFactory* self) { (void)self; return false; }

static OrtStatus* ORT_API_CALL FactoryCreateSyncStream(OrtEpFactory* self, const OrtMemoryDevice* device,
                                                       const OrtKeyValuePairs* options, OrtSyncStreamImpl** out) {
  (void)device; (void)options;
  *out = NULL;
  return ((FakeFactory*)self)->api->CreateStatus(ORT_NOT_IMPLEMENTED, "fake OpenVINO EP: no streams");
}

OrtStatus* CreateEpFactories(const char* registered_name, const OrtApiBase* api_base, const OrtLogger* logger,
                             OrtEpFactory** factories, size_t max_factories, size_t* num_factories) {
  (void)registered_name; (void)logger;
  const OrtApi* api = api_base->GetApi(FAKE_API_VERSION);
  *num_factories = 0;
  if (api == NULL || max_factories < 1) return NULL;
  FakeFactory* f = (FakeFactory*)calloc(1, sizeof(FakeFactory));
  if (f == NULL) return api->CreateStatus(ORT_FAIL, "fake OpenVINO EP: out of memory");
  f->api = api;
  f->ep_api = api->GetEpApi();
  f->base.ort_version_supported = FAKE_API_VERSION;
  f->base.GetName = FactoryGetName;
  f->base.GetVendor = FactoryGetVendor;
  f->base.GetVendorId = FactoryGetVendorId;
  f->base.GetVersion = FactoryGetVersion;
  f->base.GetSupportedDevices = FactoryGetSupportedDevices;
  f->base.CreateEp = FactoryCreateEp;
  f->base.ReleaseEp = FactoryReleaseEp;
  f->base.ValidateCompiledModelCompatibilityInfo = FactoryValidate;
  f->base.CreateAllocator = FactoryCreateAllocator;
  f->base.ReleaseAllocator = FactoryReleaseAllocator;
  f->base.CreateDataTransfer = FactoryCreateDataTransfer;
  f->base.IsStreamAware = FactoryIsStreamAware;
  f->base.CreateSyncStreamForDevice = FactoryCreateSyncStream;
  factories[0] = &f->base;
  *num_factories = 1;
  return NULL;
}

OrtStatus* ReleaseEpFactory(OrtEpFactory* factory) {
  FakeFactory* f = (FakeFactory*)factory;
  if (f->gpu != NULL) f->ep_api->ReleaseHardwareDevice(f->gpu);
  if (f->npu != NULL) f->ep_api->ReleaseHardwareDevice(f->npu);
  free(f);
  return NULL;
}
